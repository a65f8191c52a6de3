"""Pure statistics of rater agreement, reliability, consensus and routing (numpy/scipy/scikit-learn; no Django)."""

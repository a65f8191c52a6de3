"""Who people are, what they may do and what they did."""

"""Judgments: rubrics, rounds, assignments, labels, detection, consensus, adjudication, exports."""

"""Plots as PNG: a job's curves, confusion matrix and mistakes; comparisons; a sweep's leaderboard."""

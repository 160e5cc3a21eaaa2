"""Tests of the user command lines in tools/ (and the dataset scripts users run)."""

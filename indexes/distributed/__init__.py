"""Indexes spread over several folders or Ray workers (extra `distributed` for the Ray parts)."""

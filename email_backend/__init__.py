"""Sends each confirmed order's email over SMTP and records the outcome in ``order_email_sent``."""

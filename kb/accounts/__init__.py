"""Accounts: users, roles, API tokens, sign-in and the admin pages."""

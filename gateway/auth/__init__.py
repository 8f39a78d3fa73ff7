"""Access control: principals (users, tokens, sessions), the rule table, limits.

See docs/security.md. ``rules.py`` is the one place that says who may call which route.
"""

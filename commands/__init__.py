"""Write side: aggregates, their events, commands and the handlers that decide them.

Imports neither Flask nor marshmallow.
"""

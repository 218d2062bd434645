"""The Smart Installer: a service that holds a deployment's global parameters and hands each node
its part (issue 7).

Layers, lowest first: errors (HTTP-status-carrying errors), textfmt (the agent's key='value'
format), auth (password hashing, tokens), db (SQLite / PostgreSQL through one DB-API layer,
numbered migrations), fitness (inventory -> role checks), store (every operation, used by the
HTTP server and the CLI alike), api / agentapi (the JSON API and the agent's text API), server
(the threaded HTTP server and `serve`).
"""

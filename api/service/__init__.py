"""The application layer: what the service does, whoever asks.

The JSON API (`api/routers/`) and the pages (`api/web/`) are thin adapters over this package:
they parse a request, call one function or method here, and render what it returns (JSON, or
a page). Nothing here sees a request, a form or a template; a refusal is an `api.errors.ApiError`
(its code, message and the status both adapters answer with).

- `workflows`: every call to Temporal about an internship (start, read, update, signal): the
  one seam the surface tests replace.
- `internships`: posting and the lifecycle steps, one named method per workflow update.
- `views`: one internship as one viewer may see it and what they may do (JSON and pages).
- `reads`: every read of the database projection (lists and cursors, dashboards, the ops
  queue, recommendations, portfolios, contacts).
- `profiles`: a launcher's and a company's profile as a viewer may read it, changed by its
  owner, and its image stored (`core.images`, `core.files`).

Accounts, tokens and sign-in live in `core.accounts` and `core.inbox` (the worker's setup
uses them too); the adapters call them directly.
"""

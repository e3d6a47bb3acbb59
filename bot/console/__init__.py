"""The operator console at ``/console``: server-rendered pages for ministry staff.

Who may do what, and how a browser proves who it is, is decided in ``bot.console.auth``
(accounts and sessions are stored by ``bot.storage.accounts``); no page or endpoint here
works without a session, and roles are checked on the server, never only in the page.
"""

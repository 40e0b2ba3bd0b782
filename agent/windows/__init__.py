"""Windows-only parts of the agent: the service wrapper, paths under %ProgramData%, the gateway from
``route print -4``. Linux never imports this package (``tests/test_windows.py`` checks it).

None of it has run on a Windows PC here: there is no Windows in this project's CI. What can be
checked on Linux is: the parsers, on outputs recorded on real Windows machines, and mypy with
``--platform win32``. Everything that calls Windows itself is kept thin around those parsers.
"""

"""Development tools, not the service: the local stack of real services on loopback
(``localstack``, used by the tests and benchmarks), ``make demo`` (``demo``) and the simulated
province (``simulate``, run as ``commune-sim``)."""

"""The analysis layer: tasks with named inputs, the runner, explanations and batches.

Above ``app.engine`` (adapters), ``app.findings`` (results) and ``app.study`` (loading); below
``app.ui`` and ``app.commands``. See ARCHITECTURE.md.
"""

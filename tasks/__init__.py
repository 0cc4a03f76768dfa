from tasks.compiled import current_build

# The compiled extractor modules, when built from the sources as they are (tasks/compiled.py).
if (_build := current_build()) is not None:
    __path__.insert(0, str(_build))

"""The mask editor's model, without Qt: brush/eraser/fill and other tools on a label-map layer
(``editor``, ``brush``, ``tools``), undo/redo as sparse run-length diffs (``history``), rebindable
keys (``keys``), the autosave journal and crash recovery (``journal``), save/export/import
(``export``) and re-running a task on the corrected mask (``rerun``). ``app/ui`` only turns mouse
and key events into calls on these objects and draws the result (napari's Labels pattern).
"""

"""Citizens' personal data has an end: the retention policy's daily purge (`retention`), a
citizen's request for their data or its erasure (`requests`), the removal itself, kind by
kind (`records`), and `huifang privacy …` (`cli`).

Like `domain/`, this package holds SQL of its own: it reads and rewrites the case tables,
never the figures computed from them.
"""

"""Data mode: the user's tables (recipients, campaigns, events, A/B results) and public datasets.

The file readers (:mod:`~personasim.data.recipients`, :mod:`~personasim.data.campaigns`,
:mod:`~personasim.data.events` and :mod:`~personasim.data.ab_results`, built on the parsers of
:mod:`~personasim.data.tables`) share one convention for errors. Every problem becomes a
one-line :class:`~personasim.core.errors.DataError` naming the file and the column or row at
fault. Rows are numbered as a person counts data rows in the file: the first row under the
header is ``row 1`` (the header itself is not counted).
"""

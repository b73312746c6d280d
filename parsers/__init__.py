"""Log lines -> Elastic Common Schema documents: access logs, app lines, CRI stdout, APM spans.

The consumer codes against :class:`LineParser` and its results; documents are nested objects
(``{"http": {"response": {"status_code": 500}}}``). See ``parsers/README.md`` for every field.
"""

from parsers.document import TimeWindow
from parsers.extra import ExtraLimits
from parsers.line_parser import LineParser
from parsers.result import Many, Parsed, ParseResult, Partial, Unparseable

__all__ = ["ExtraLimits", "LineParser", "Many", "ParseResult", "Parsed", "Partial", "TimeWindow", "Unparseable"]

"""papermail: a personal daily research-papers newsletter.

The batch runs four stages, one module each: gather (``pipeline.sources``), rank
(``pipeline.ranking``), render (``pipeline.rendering``) and deliver
(``pipeline.delivery``), wired for one day by ``pipeline.app`` and ``pipeline.engine``.
``pipeline.cli`` is the command-line shell around them.
"""

__version__ = "0.1.0"

"""Search: hybrid chunk search (``hybrid``, with term proximity in ``proximity``) and figure search (``figures``)."""

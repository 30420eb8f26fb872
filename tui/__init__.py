"""The Textual app. It calls the other packages; none of them imports it."""

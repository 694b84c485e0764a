"""The build side: render the client module, minify it, inject it into built pages."""

"""Where runs execute: the GPU tag and pool every GPU step carries, and the Docker stack's two code locations split by
that tag; and who reaches the UI behind the stack's public proxy (``proxy_auth``)."""

"""What the tests share besides conftest's fixtures: loopback fakes of remote clouds, a hand-moved clock,
signed posts to the Flask test client, the console script as a process, and the OpenID provider (oidc/)."""

"""The central actor: registers actors, routes their messages, stamps every bag."""

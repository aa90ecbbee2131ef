"""The math server: the smallest useful actor (service ``math``)."""

from actornet import Actor, handler


def _integers(bag):
    a, b = bag.get("a"), bag.get("b")
    for name, value in (("a", a), ("b", b)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be an integer, got {value!r}")
    return a, b


class MathServer(Actor):
    """Adds, subtracts and multiplies the integers ``a`` and ``b``."""

    services = ("math",)

    @handler
    def add(self, bag):
        a, b = _integers(bag)
        return a + b

    @handler
    def sub(self, bag):
        a, b = _integers(bag)
        return a - b

    @handler
    def mul(self, bag):
        a, b = _integers(bag)
        return a * b

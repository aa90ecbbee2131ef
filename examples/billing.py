"""A medical billing pipeline: intake -> insurance check -> provider lookup.

Each stage adds what it knows to the bag and forwards it; the last stage's
answer goes straight back to whoever asked the intake, and the answer's route
shows every actor it passed through.
"""

from actornet import Actor, handler

COVERED = {"alice": "Acme Health", "bob": "Blue Shield"}
PROVIDERS = {"x-ray": "Dr. Curie", "checkup": "Dr. Watson"}


class Intake(Actor):
    """Checks the claim is complete, then hands it to the insurance check."""

    services = ("billing",)

    @handler
    def claim(self, bag):
        for field in ("patient", "procedure"):
            if not bag.get(field):
                raise ValueError(f"a claim needs a {field}")
        bag["received_by"] = self.name
        return self.forward(bag, "insurance", "check")


class InsuranceCheck(Actor):
    """Looks up the patient's coverage; uncovered patients are refused."""

    services = ("insurance",)

    @handler
    def check(self, bag):
        insurer = COVERED.get(bag["patient"])
        if insurer is None:
            raise LookupError(f"{bag['patient']} has no coverage on file")
        bag["insurer"] = insurer
        return self.forward(bag, "provider", "lookup")


class ProviderLookup(Actor):
    """Finds who performs the procedure and answers the original asker."""

    services = ("provider",)

    @handler
    def lookup(self, bag):
        provider = PROVIDERS.get(bag["procedure"])
        if provider is None:
            raise LookupError(f"nobody performs {bag['procedure']!r}")
        return dict(bag, provider=provider, approved=True)

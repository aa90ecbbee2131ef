"""Admission with identities, permissions, reserved names and name rules, on plain values."""

from types import SimpleNamespace

import pytest
from OpenSSL.crypto import X509

from actornet.certs import init, issue, read_certificate
from actornet.dispatcher.admission import MAX_KNOWN_SERVICES, MAX_SERVICES, Refusal, admit
from actornet.dispatcher.identity import SHARED, Identity
from actornet.dispatcher.settings import DispatcherSettings
from actornet.protocols.codes import Kind, Status

ALICE = Identity("alice", register=("math-*",), serve=("math",), token="alice-secret")
BOB = Identity("bob", register=("client-*",), ask=("math",), token="bob-secret")
MALLORY = Identity("mallory", register=("mallory-*",), serve=("*",), token="mallory-secret")
NETWORK = DispatcherSettings(identities=(ALICE, BOB, MALLORY))


def registry(names=(), known=()):
    """A registry holding ``names`` (each on its own connection) and ``known`` services."""
    by_name = {name: SimpleNamespace(conn_id=i) for i, name in enumerate(names, 1)}
    return SimpleNamespace(by_name=by_name, known_services=set(known))


def register(name, services=(), token=None):
    envelope = {"k": Kind.REGISTER, "name": name, "svcs": list(services)}
    if token is not None:
        envelope["tok"] = token
    return envelope


def peer_with(certificate):
    """A peer whose TLS transport presented ``certificate`` (a pyOpenSSL X509, or None)."""
    transport = SimpleNamespace(getPeerCertificate=lambda: certificate)
    return SimpleNamespace(protocol=SimpleNamespace(transport=transport))


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """Certificates for alice and for eve (who is no identity of NETWORK), from one CA."""
    folder = tmp_path_factory.mktemp("certs")
    init(folder)
    return {name: X509.from_cryptography(read_certificate(issue(folder, name)[0]))
            for name in ("alice", "eve")}


def test_without_identities_or_token_everyone_is_the_shared_identity():
    """A network with no token and no identities admits any REGISTER as SHARED, as before."""
    assert admit(register("math-1", ["math"]), DispatcherSettings(), registry()) is SHARED


def test_an_identity_token_admits_as_that_identity():
    """A REGISTER carrying an identity's token is admitted as that identity."""
    assert admit(register("math-1", ["math"], "alice-secret"), NETWORK, registry()) == ALICE
    assert admit(register("client-7", [], "bob-secret"), NETWORK, registry()) == BOB


def test_the_shared_token_still_admits_as_shared_beside_identities():
    """With identities and a shared token, the shared token admits as SHARED."""
    settings = DispatcherSettings(token="operator", identities=(ALICE,))
    assert admit(register("anything", ["svc"], "operator"), settings, registry()) is SHARED


@pytest.mark.parametrize(("token", "message"), [
    (None, "a client certificate or a token is required"),
    ("guess", "missing or wrong token"),
])
def test_with_identities_a_peer_without_a_known_token_is_unauthorized(token, message):
    """Once identities exist, a REGISTER with no token or an unknown one is refused."""
    assert admit(register("math-1", ["math"], token), NETWORK, registry()) == Refusal(
        Status.UNAUTHORIZED, message, "unauthorized")


def test_a_client_certificate_names_the_identity(certificates):
    """Over TLS, the certificate's common name is the identity, whatever the token says."""
    envelope = register("math-1", ["math"], "bob-secret")
    assert admit(envelope, NETWORK, registry(), peer_with(certificates["alice"])) == ALICE


def test_a_certificate_for_no_configured_identity_is_unauthorized_naming_it(certificates):
    """A verified certificate whose common name is no identity is refused, naming it."""
    refusal = admit(register("math-1", ["math"]), NETWORK, registry(),
                    peer_with(certificates["eve"]))
    assert refusal == Refusal(
        Status.UNAUTHORIZED,
        "the client certificate's identity 'eve' is not one of this network's identities",
        "unauthorized")


def test_a_plain_connection_presents_no_certificate():
    """A transport without certificates (plain TCP) falls back to the token rules."""
    assert admit(register("math-1", ["math"], "alice-secret"), NETWORK, registry(),
                 peer_with(None)) == ALICE


def test_an_identity_may_not_register_a_name_outside_its_patterns():
    """mallory registering math-1 is UNAUTHORIZED naming the identity and the name."""
    refusal = admit(register("math-1", ["math"], "mallory-secret"), NETWORK, registry())
    assert refusal == Refusal(
        Status.UNAUTHORIZED, "identity 'mallory' may not register the name 'math-1'",
        "forbidden")


def test_an_identity_may_not_serve_a_service_outside_its_patterns():
    """alice may register math-2 but not serve billing alongside math."""
    refusal = admit(register("math-2", ["math", "billing"], "alice-secret"), NETWORK,
                    registry())
    assert refusal == Refusal(
        Status.UNAUTHORIZED, "identity 'alice' may not serve the service 'billing'",
        "forbidden")


def test_a_forbidden_name_is_refused_before_saying_it_is_taken():
    """An identity that may not have a name does not learn that somebody holds it."""
    refusal = admit(register("math-1", [], "mallory-secret"), NETWORK, registry(["math-1"]))
    assert refusal.status is Status.UNAUTHORIZED


def test_a_taken_name_is_still_name_taken_for_whoever_may_have_it():
    """alice registering a math-1 that is connected gets NAME_TAKEN, as before."""
    refusal = admit(register("math-1", ["math"], "alice-secret"), NETWORK, registry(["math-1"]))
    assert refusal == Refusal(Status.NAME_TAKEN, "the name 'math-1' is taken by connection 1",
                              "name_taken")


@pytest.mark.parametrize(("name", "message"), [
    ("dispatcher", "the name 'dispatcher' is the dispatcher's own"),
    ("Dispatcher", "the name 'Dispatcher' is the dispatcher's own"),
    ("mmi", "the name 'mmi' is the dispatcher's own"),
    ("hub", "the name 'hub' is the dispatcher's own"),
    ("actornet", "the name 'actornet' is reserved: names starting with 'actornet' belong "
                 "to actornet"),
    ("actornet-keepalive", "the name 'actornet-keepalive' is reserved: names starting with "
                           "'actornet' belong to actornet"),
])
def test_reserved_names_are_refused_even_to_the_shared_identity(name, message):
    """No identity, SHARED included, may register the dispatcher's names or actornet*."""
    settings = DispatcherSettings(name="hub")
    assert admit(register(name), settings, registry()) == Refusal(
        Status.UNAUTHORIZED, message, "forbidden")


@pytest.mark.parametrize(("service", "message"), [
    ("mmi", "the service 'mmi' is answered by the dispatcher itself"),
    ("journal", "the service 'journal' is answered by the dispatcher itself"),
    ("actornet.actors", "the service 'actornet.actors' is reserved: services under "
                        "'actornet.' belong to actornet"),
])
def test_reserved_services_are_refused_even_to_the_shared_identity(service, message):
    """No identity may serve mmi, journal or a service under actornet."""
    assert admit(register("impostor", ["work", service]), DispatcherSettings(),
                 registry()) == Refusal(Status.UNAUTHORIZED, message, "forbidden")


def test_an_identity_allowed_everything_still_cannot_take_reserved_names():
    """A register pattern of '*' does not reach the dispatcher's own names."""
    root = Identity("root", register=("*",), serve=("*",), token="root-secret")
    settings = DispatcherSettings(identities=(root,))
    refusal = admit(register("mmi", [], "root-secret"), settings, registry())
    assert refusal.message == "the name 'mmi' is the dispatcher's own"


@pytest.mark.parametrize("bad", ["math\n2024-01-01 forged log line", "red\x1b[31m",
                                 "evil\u202etxt", "nul\x00"],
                         ids=["newline", "ansi-escape", "bidi-override", "nul"])
def test_names_and_services_with_control_characters_are_malformed(bad):
    """A name or a service holding control characters is MALFORMED_ENVELOPE, shown escaped."""
    for envelope, kind in ((register(bad), "name"), (register("ok", ["fine", bad]), "service")):
        assert admit(envelope, DispatcherSettings(), registry()) == Refusal(
            Status.MALFORMED_ENVELOPE, f"the {kind} {bad!r} holds control characters",
            "malformed")


def test_an_actor_serves_at_most_max_services():
    """MAX_SERVICES distinct services are admitted; one more is MALFORMED_ENVELOPE."""
    most = [f"s{i}" for i in range(MAX_SERVICES)]
    assert admit(register("wide", most + most), DispatcherSettings(), registry()) is SHARED
    refusal = admit(register("wider", [*most, "one-more"]), DispatcherSettings(), registry())
    assert refusal == Refusal(
        Status.MALFORMED_ENVELOPE,
        f"an actor serves at most {MAX_SERVICES} services, not {MAX_SERVICES + 1}", "malformed")


def test_a_full_registry_refuses_new_services_but_not_known_ones():
    """Past MAX_KNOWN_SERVICES distinct services, only services already known are admitted."""
    full = registry(known=(f"s{i}" for i in range(MAX_KNOWN_SERVICES)))
    assert admit(register("old", ["s1", "s2"]), DispatcherSettings(), full) is SHARED
    refusal = admit(register("new", ["s1", "fresh"]), DispatcherSettings(), full)
    assert refusal == Refusal(
        Status.UNAUTHORIZED,
        f"this network already knows {MAX_KNOWN_SERVICES} services (at most "
        f"{MAX_KNOWN_SERVICES}); 'fresh' would be one more", "too_many_services")


def test_an_identity_is_allowed_only_what_its_patterns_say():
    """An identity given no patterns may do nothing; SHARED may do everything."""
    nobody = Identity("nobody")
    for action in ("register", "serve", "ask", "publish"):
        assert not nobody.may(action, "x")
        assert SHARED.may(action, "x")
    assert ALICE.may("register", "math-12") and not ALICE.may("register", "math")


def test_an_identity_never_shows_its_token():
    """The repr of an identity (logged, shown in snapshots) leaves its token out."""
    assert "alice-secret" not in repr(ALICE)

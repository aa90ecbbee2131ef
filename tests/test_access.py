"""The config's [identities.NAME] tables and [dispatcher.tls]: records, and mistakes named."""

import pytest

from actornet.certs import init, issue
from actornet.config import ConfigError, load
from actornet.dispatcher.identity import Identity

DISPATCHER = '[dispatcher]\nlisten = "tcp:0"\n'
TLS = ('[dispatcher.tls]\nlisten = "tcp:0:interface=127.0.0.1"\n'
       'certificate = "certs/dispatcher.pem"\nkey = "certs/dispatcher.key"\n'
       'ca = "certs/ca/ca.pem"\n')
ALICE = '[identities.alice]\nregister = "math-*"\nserve = ["math"]\n'


def write(tmp_path, text):
    path = tmp_path / "net.toml"
    path.write_text(text)
    return path


def fails(tmp_path, text, message):
    with pytest.raises(ConfigError) as raised:
        load(write(tmp_path, text))
    assert str(raised.value) == f"{tmp_path / 'net.toml'}: {message}"


@pytest.fixture
def certs(tmp_path):
    """A CA and a dispatcher certificate in tmp_path/certs, as TLS expects them."""
    init(tmp_path / "certs")
    issue(tmp_path / "certs", "dispatcher", ["127.0.0.1"])
    return tmp_path / "certs"


def test_identities_become_records_with_nothing_allowed_unless_given(tmp_path):
    """Each [identities.NAME] is an Identity; lists not given allow nothing."""
    network = load(write(tmp_path, DISPATCHER + ALICE +
                         '[identities.bob]\ntoken = "b0b"\nask = ["math", "billing.*"]\n'))
    assert network.dispatcher.settings.identities == (
        Identity("alice", register=("math-*",), serve=("math",)),
        Identity("bob", ask=("math", "billing.*"), token="b0b"))


def test_without_identities_the_settings_have_none(tmp_path):
    """A config with no [identities] keeps today's behaviour: no identities, no TLS."""
    network = load(write(tmp_path, DISPATCHER))
    assert network.dispatcher.settings.identities == ()
    assert network.dispatcher.tls is None


@pytest.mark.parametrize(("text", "message"), [
    ('[identities.alice]\nask = 3\n',
     "identities.alice.ask: expected text or a list of text, got 3"),
    ('[identities.alice]\nasks = "math"\n', "identities.alice.asks: unknown key (a typo?)"),
    ('[identities.alice]\npublish = ["ok", ""]\n',
     "identities.alice.publish: expected non-empty text items, got ['ok', '']"),
    ('[identities.alice]\ntoken = ""\n', "identities.alice.token: expected non-empty text, got ''"),
    ('[identities.alice]\ntoken = "same"\n[identities.bob]\ntoken = "same"\n',
     "identities.bob.token: the same as identities.alice.token: a token names one identity"),
    ('[identities]\nalice = "x"\n', "identities.alice: expected a table, got str"),
])
def test_bad_identities_are_named_by_file_and_key(tmp_path, text, message):
    """Each mistake in an identity table is one line naming identities.NAME.key."""
    fails(tmp_path, DISPATCHER + text, message)


def test_identities_must_be_tables(tmp_path):
    """A top-level identities key that is not a table of tables is named."""
    fails(tmp_path, "identities = 3\n" + DISPATCHER,
          "(top level).identities: expected [identities.NAME] tables, got 3")


def test_the_shared_token_may_not_be_an_identitys_token(tmp_path):
    """A shared token equal to an identity's token would make that identity everyone."""
    fails(tmp_path, DISPATCHER + 'token = "same"\n[identities.alice]\ntoken = "same"\n',
          "dispatcher.token: the same as an identity's token: the shared token must be a "
          "secret of its own")


def test_identities_without_a_dispatcher_are_refused(tmp_path):
    """[identities] in a [join] config would silently do nothing, so it is an error."""
    (tmp_path / "stub_actor.py").write_text(
        "from actornet import Actor\n\nclass Stub(Actor):\n    services = ('s',)\n")
    fails(tmp_path, '[join]\nconnect = "tcp:host=127.0.0.1:port=1"\n'
                    '[[actor]]\nclass = "stub_actor:Stub"\n' + ALICE,
          "[identities] say who may join a dispatcher: they belong in the config with the "
          "[dispatcher] table")


def test_actors_beside_a_dispatcher_with_identities_need_the_shared_token(tmp_path):
    """Embedded actors register with the shared token; without one they could never join."""
    (tmp_path / "stub_actor.py").write_text(
        "from actornet import Actor\n\nclass Stub(Actor):\n    services = ('s',)\n")
    fails(tmp_path, DISPATCHER + '[[actor]]\nclass = "stub_actor:Stub"\n' + ALICE,
          "the [[actor]] tables beside a dispatcher with [identities] register with its "
          "shared token: set dispatcher.token")


def test_tls_paths_are_relative_to_the_config_folder(tmp_path, certs):
    """[dispatcher.tls] paths are resolved against the config's folder and read at load."""
    tls = load(write(tmp_path, DISPATCHER + TLS + ALICE)).dispatcher.tls
    assert tls.listen == ("tcp:0:interface=127.0.0.1",)
    assert tls.certificate == str(certs / "dispatcher.pem")
    assert tls.ca == str(certs / "ca" / "ca.pem")
    assert tls.options().requireCertificate


def test_tls_without_identities_is_refused(tmp_path, certs):
    """A TLS listener whose certificates could name no identity is a config error."""
    fails(tmp_path, DISPATCHER + TLS,
          "dispatcher.tls: needs [identities.NAME] tables: a client certificate's common "
          "name must name one of them")


def test_a_missing_tls_file_is_named_by_its_key(tmp_path, certs):
    """A CA path that does not exist fails naming dispatcher.tls.ca and the file."""
    fails(tmp_path, DISPATCHER + TLS.replace("ca/ca.pem", "ca/nope.pem") + ALICE,
          f"dispatcher.tls.ca: cannot read {certs}/ca/nope.pem: No such file or directory")


def test_a_key_of_another_certificate_is_named(tmp_path, certs):
    """A key that does not belong to the certificate fails naming dispatcher.tls.key."""
    issue(certs, "alice")
    fails(tmp_path, DISPATCHER + TLS.replace("dispatcher.key", "alice.key") + ALICE,
          f"dispatcher.tls.key: {certs}/alice.key is not the key of {certs}/dispatcher.pem")


def test_a_tls_listen_typo_is_named(tmp_path, certs):
    """A TLS listen endpoint that does not parse is named like the plain listen's."""
    fails(tmp_path, DISPATCHER + TLS.replace('"tcp:0:interface=127.0.0.1"', '"tcpp:1"') + ALICE,
          "dispatcher.tls.listen: 'tcpp:1' is not a usable endpoint: Unknown endpoint type: "
          "'tcpp'")

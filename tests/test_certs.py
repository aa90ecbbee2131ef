"""``actornet certs``: a network's certificate authority and the certificates it signs."""

import argparse
import ipaddress
import stat

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from twisted.internet.defer import ensureDeferred
from twisted.python.failure import Failure

from actornet.certs import (
    CertificateError,
    add_certs,
    init,
    issue,
    read_certificate,
    server_options,
)


def run_certs(*argv):
    """Run ``actornet certs ARGV`` from a parser holding only that command."""
    top = argparse.ArgumentParser(prog="actornet")
    add_certs(top.add_subparsers(dest="command", required=True))
    args = top.parse_args(["certs", *argv])
    outcome = []
    ensureDeferred(args.run(None, args)).addBoth(outcome.append)
    if isinstance(outcome[0], Failure):
        outcome[0].raiseException()


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def common_name(certificate):
    return certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def test_init_makes_an_authority_whose_key_only_its_owner_reads(tmp_path):
    """init writes ca/ca.pem (a CA certificate) and ca.key with mode 0600."""
    path = init(tmp_path / "certs")
    authority = read_certificate(path)
    assert path == tmp_path / "certs" / "ca" / "ca.pem"
    assert authority.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert mode(tmp_path / "certs" / "ca.key") == 0o600
    assert [p.name for p in (tmp_path / "certs" / "ca").iterdir()] == ["ca.pem"]


def test_a_second_init_refuses_to_replace_the_authority(tmp_path):
    """init on a folder that has an authority fails and leaves its key untouched."""
    init(tmp_path)
    key = (tmp_path / "ca.key").read_bytes()
    with pytest.raises(CertificateError, match="a network's authority is made once"):
        init(tmp_path)
    assert (tmp_path / "ca.key").read_bytes() == key


def test_issue_signs_a_client_certificate_naming_the_identity(tmp_path):
    """A peer's certificate has CN=NAME, is signed by the authority and is for client auth."""
    authority = read_certificate(init(tmp_path))
    certificate_path, key_path = issue(tmp_path, "alice")
    certificate = read_certificate(certificate_path)
    certificate.verify_directly_issued_by(authority)
    assert common_name(certificate) == "alice"
    usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert mode(key_path) == 0o600


def test_a_server_certificate_names_the_hosts_peers_reach_it_by(tmp_path):
    """A dispatcher's certificate carries its hosts as subjectAltNames and is for server auth."""
    init(tmp_path)
    certificate = read_certificate(issue(tmp_path, "dispatcher", ["127.0.0.1", "hub.example"])[0])
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert names.get_values_for_type(x509.DNSName) == ["hub.example"]
    usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]


@pytest.mark.parametrize("name", ["ca", "../alice", "a/b", "", "bad\nname"])
def test_issue_refuses_names_that_are_not_plain_file_names(tmp_path, name):
    """A name that would escape the folder, clash with the CA or hold control characters fails."""
    init(tmp_path)
    with pytest.raises(CertificateError, match="cannot name a certificate"):
        issue(tmp_path, name)


def test_issue_does_not_overwrite_a_certificate(tmp_path):
    """Issuing a name twice fails naming the file, which is kept."""
    init(tmp_path)
    first = issue(tmp_path, "alice")[0].read_bytes()
    with pytest.raises(CertificateError, match=r"alice\.pem exists"):
        issue(tmp_path, "alice")
    assert (tmp_path / "alice.pem").read_bytes() == first


def test_issue_without_an_authority_says_which_file_is_missing(tmp_path):
    """issue in a folder with no authority names the missing key."""
    with pytest.raises(CertificateError, match=r"cannot read .*ca\.key: No such file"):
        issue(tmp_path, "alice")


def test_server_options_require_a_client_certificate(tmp_path):
    """The dispatcher's TLS options verify peers and refuse those with no certificate."""
    ca = init(tmp_path)
    certificate, key = issue(tmp_path, "dispatcher", ["127.0.0.1"])
    options = server_options(certificate, key, ca)
    assert options.verify and options.requireCertificate


def test_server_options_refuse_a_key_of_another_certificate(tmp_path):
    """A key that does not belong to the certificate is named as such."""
    ca = init(tmp_path)
    certificate, _ = issue(tmp_path, "dispatcher", ["127.0.0.1"])
    _, other_key = issue(tmp_path, "alice")
    with pytest.raises(CertificateError, match="alice.key is not the key of .*dispatcher.pem"):
        server_options(certificate, other_key, ca)


def test_the_certs_command_makes_an_authority_and_certificates(tmp_path, capsys):
    """`certs init DIR` then `certs issue DIR NAME [--server]` print what they wrote."""
    folder = tmp_path / "certs"
    run_certs("init", str(folder))
    run_certs("issue", str(folder), "dispatcher", "--server")
    run_certs("issue", str(folder), "alice")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"made the certificate authority {folder}/ca/ca.pem")
    assert lines[1] == (f"issued {folder}/dispatcher.pem and its key {folder}/dispatcher.key: "
                        "identity 'dispatcher', for a dispatcher reached as localhost, "
                        "127.0.0.1, ::1")
    assert lines[2].endswith("identity 'alice', for a peer")


def test_the_certs_command_fails_in_one_line(tmp_path, capsys):
    """A refused step prints `actornet: ...` on stderr and exits with status 1."""
    run_certs("init", str(tmp_path))
    with pytest.raises(SystemExit) as exited:
        run_certs("init", str(tmp_path))
    assert exited.value.code == 1
    assert capsys.readouterr().err == (
        f"actornet: {tmp_path}/ca.key exists: a network's authority is made once "
        "(remove the folder to start a new network)\n")

"""Certificates for a network that admits peers by TLS client certificate.

``actornet certs init DIR`` makes the network's certificate authority and
``actornet certs issue DIR NAME`` a certificate for the identity NAME (its
subject's common name), signed by that authority.  The dispatcher trusts
exactly that authority, so a certificate is as good as the identity it names;
the authority's key signs every one of them and never leaves DIR.

A folder made here holds::

    DIR/ca.key              the authority's key (mode 0600): keep it private
    DIR/ca/ca.pem           its certificate, alone in its folder, so that
                            Twisted's ``tls:...:trustRoots=DIR/ca`` trusts it
                            and nothing else
    DIR/NAME.pem, NAME.key  one identity's certificate and key (mode 0600)

Keys are EC P-256: quick to make and accepted everywhere TLS 1.2 is.
"""

import datetime
import ipaddress
import os
import sys
import unicodedata
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from OpenSSL import SSL
from OpenSSL.crypto import X509
from twisted.internet import ssl

CA_KEY = "ca.key"
CA_CERTIFICATE = "ca/ca.pem"
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
SKEW = datetime.timedelta(minutes=5)
"""Certificates start this long before they are made, so a peer whose clock is
slightly behind still accepts them."""


class CertificateError(ValueError):
    """A certificate or key cannot be made, read or used; the message says which and why."""


def init(directory, name="actornet CA", days=3650):
    """Make a network's certificate authority in ``directory``.

    @return: the path of the authority's certificate.
    @raise CertificateError: when ``directory`` already has an authority (a
        network's authority is made once: every certificate hangs on it).
    """
    directory = Path(directory)
    if (directory / CA_KEY).exists():
        raise CertificateError(f"{directory / CA_KEY} exists: a network's authority is made "
                               "once (remove the folder to start a new network)")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(name)
    certificate = (_builder(subject, subject, key.public_key(), days)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                   .add_extension(x509.KeyUsage(
                       digital_signature=False, content_commitment=False,
                       key_encipherment=False, data_encipherment=False, key_agreement=False,
                       key_cert_sign=True, crl_sign=True, encipher_only=False,
                       decipher_only=False), critical=True)
                   .sign(key, hashes.SHA256()))
    (directory / "ca").mkdir(parents=True, exist_ok=True)
    _write_private(directory / CA_KEY, _key_pem(key))
    (directory / CA_CERTIFICATE).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return directory / CA_CERTIFICATE


def issue(directory, name, servers=None, days=365):
    """Issue a certificate whose common name is ``name``, signed by the authority
    in ``directory``.

    @param servers: None for a peer's certificate (an actor or a client); for a
        dispatcher's, the host names and addresses peers reach it by.
    @return: the paths of the certificate and of its key.
    @raise CertificateError: for a name that is not a plain file name, a
        missing authority, or a certificate of that name that already exists.
    """
    directory = Path(directory)
    _check_name(name)
    authority_key = read_key(directory / CA_KEY)
    authority = read_certificate(directory / CA_CERTIFICATE)
    certificate_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    for path in (certificate_path, key_path):
        if path.exists():
            raise CertificateError(f"{path} exists; remove it to issue {name!r} again")
    key = ec.generate_private_key(ec.SECP256R1())
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if servers is None else ExtendedKeyUsageOID.SERVER_AUTH
    builder = (_builder(_name(name), authority.subject, key.public_key(), days)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   authority_key.public_key()), critical=False))
    if servers is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(host) for host in servers]),
            critical=False)
    certificate = builder.sign(authority_key, hashes.SHA256())
    _write_private(key_path, _key_pem(key))
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return certificate_path, key_path


def server_options(certificate, key, ca):
    """The TLS options of a dispatcher that requires every peer to present a
    certificate signed by the authority at ``ca`` (paths to PEM files).

    @raise CertificateError: naming the file that cannot be read, or saying
        that the key does not belong to the certificate.
    """
    authority = ssl.Certificate(X509.from_cryptography(read_certificate(ca)))
    options = ssl.CertificateOptions(
        privateKey=read_key(key), certificate=read_certificate(certificate),
        trustRoot=ssl.trustRootFromCertificates([authority]))
    try:
        options.getContext()
    except SSL.Error as e:
        raise CertificateError(f"{key} is not the key of {certificate}") from e
    return options


def read_certificate(path):
    """The certificate in the PEM file at ``path``."""
    try:
        return x509.load_pem_x509_certificate(Path(path).read_bytes())
    except OSError as e:
        raise CertificateError(f"cannot read {path}: {e.strerror}") from e
    except ValueError as e:
        raise CertificateError(f"{path} is not a PEM certificate") from e


def read_key(path):
    """The private key in the PEM file at ``path``."""
    try:
        return serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except OSError as e:
        raise CertificateError(f"cannot read {path}: {e.strerror}") from e
    except (ValueError, TypeError) as e:
        raise CertificateError(f"{path} is not an unencrypted PEM private key") from e


def _check_name(name):
    if not name or name in (".", "..", "ca") or "/" in name or "\\" in name or any(
            unicodedata.category(ch).startswith("C") for ch in name):
        raise CertificateError(f"{name!r} cannot name a certificate: use a plain file name "
                               "other than 'ca', with no slashes or control characters")


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject, issuer, public_key, days):
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder()
            .subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - SKEW)
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                           critical=False))


def _general_name(host):
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write_private(path, data):
    """Write a key readable by its owner alone, never over an existing file."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as f:
        f.write(data)


# -- the ``actornet certs`` command ---------------------------------------------


def add_certs(commands):
    """Add ``actornet certs init|issue`` to the ``actornet`` command's subparsers."""
    certs = commands.add_parser("certs", help="make a CA and certificates for TLS with "
                                              "client certificates")
    steps = certs.add_subparsers(dest="certs_command", required=True, metavar="STEP",
                                 help="init (make the authority) or issue (a certificate)")
    make = steps.add_parser("init", help="make the network's certificate authority in DIR")
    make.add_argument("dir", help="the folder for the authority's files (made if missing)")
    make.add_argument("--name", default="actornet CA", help="the authority's common name")
    make.add_argument("--days", type=int, default=3650, help="valid for (default 3650)")
    make.set_defaults(run=_run_init)
    one = steps.add_parser("issue", help="issue a certificate for the identity NAME")
    one.add_argument("dir", help="the folder holding the authority (from certs init)")
    one.add_argument("name", help="the identity (the certificate's common name)")
    one.add_argument("--server", nargs="*", metavar="HOST",
                     help="a dispatcher's certificate, for these hosts (default: "
                          + ", ".join(LOCAL_HOSTS) + ")")
    one.add_argument("--days", type=int, default=365, help="valid for (default 365)")
    one.set_defaults(run=_run_issue)


async def _run_init(reactor, args):
    with _one_line_errors():
        path = init(args.dir, args.name, args.days)
    print(f"made the certificate authority {path} (its key {Path(args.dir) / CA_KEY} "
          "signs every certificate of the network: keep it private)")


async def _run_issue(reactor, args):
    servers = None
    if args.server is not None:
        servers = args.server or list(LOCAL_HOSTS)
    with _one_line_errors():
        certificate, key = issue(args.dir, args.name, servers, args.days)
    kind = f"a dispatcher reached as {', '.join(servers)}" if servers else "a peer"
    print(f"issued {certificate} and its key {key}: identity {args.name!r}, for {kind}")


class _one_line_errors:
    """End the command with ``actornet: MESSAGE`` and exit status 1 on a
    :class:`CertificateError` or a file that cannot be written."""

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if kind is not None and issubclass(kind, (CertificateError, OSError)):
            print(f"actornet: {error}", file=sys.stderr)
            raise SystemExit(1) from None
        return False

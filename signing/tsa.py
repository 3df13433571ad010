"""RFC 3161 time-stamping: a small TSA, its HTTP handler and the clients.

* `TimeStampAuthority(key, cert)` answers a TimeStampReq with a TimeStampResp (DER).
* `tsa_handler(authority)` is an aiohttp handler (POST application/timestamp-query ->
  application/timestamp-reply): the server mounts it at `/tsa`, tests run it on a port.
* `LocalTimeStamper(authority)` is a pyhanko `TimeStamper` that asks the authority
  directly, without HTTP: the built-in default when no `--tsa-url` is configured;
  `KeepAliveTimeStamper(url)` is one for a TSA over HTTP(S), on a kept-open connection.
* `request_timestamp(url, data)` (async) gets a token over HTTP from any RFC 3161 TSA (the
  recorder's Seal uses it); `token_from_response` checks a response is a grant over the
  data. Tokens are verified with tiaojie.archive.timestamp (`verify_timestamp`), the one
  token verifier, which the recording verifier uses for `seal.tsr` too.

The built-in TSA runs on the same machine, with the same operator, as everything it
timestamps: its times are the server's clock, attested by the server's own key. It is
not a trusted third party; point `--tsa-url` at one where that matters.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import secrets
import threading
import urllib.parse
from typing import Any

import aiohttp
from aiohttp import web
from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from pyhanko.sign.general import as_signing_certificate
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError

from tiaojie.archive.timestamp import TimestampError, parse_token
from tiaojie.signing.authority import PrivateKey, to_asn1_cert

# A policy identifier of our own: a UUID OID (2.25.x, ITU-T X.667), no registration needed.
TSA_POLICY = "2.25.230408384165624473012938101917416389741"
QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
MAX_REQUEST = 64 * 1024
REQUEST_TIMEOUT = 10  # seconds for one request to a TSA
#: The message imprint hashes the TSA accepts, with their digest sizes.
DIGEST_SIZES = {"sha256": 32, "sha384": 48, "sha512": 64}


def _der(tag: int, content: bytes) -> bytes:
    """One DER TLV with a one-byte `tag`."""
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    length = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


_SHA256 = algos.DigestAlgorithm({"algorithm": "sha256"}).dump()
_SHA256_RSA = algos.SignedDigestAlgorithm({"algorithm": "sha256_rsa"}).dump()
_SHA256_ECDSA = algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}).dump()
_TST_INFO_OID = cms.ContentType("tst_info").dump()
_SIGNED_DATA_OID = cms.ContentType("signed_data").dump()
_GRANTED = tsp.PKIStatusInfo({"status": tsp.PKIStatus("granted")}).dump()


class _TimeStampResp(core.Sequence):
    """TimeStampResp as RFC 3161 has it: asn1crypto's makes the token mandatory."""

    _fields = [  # noqa: RUF012
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


def _rejection(failure: str, text: str) -> _TimeStampResp:
    status = tsp.PKIStatusInfo(
        {
            "status": tsp.PKIStatus("rejection"),
            "status_string": tsp.PKIFreeText([text]),
            "fail_info": tsp.PKIFailureInfo({failure}),
        }
    )
    return _TimeStampResp({"status": status})


class TimeStampAuthority:
    """Signs RFC 3161 timestamp tokens with `key` / `cert` (RSA or ECDSA)."""

    def __init__(
        self,
        key: PrivateKey,
        cert: x509.Certificate,
        chain: list[x509.Certificate] | None = None,
    ) -> None:
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
        if ExtendedKeyUsageOID.TIME_STAMPING not in usage.value or not usage.critical:
            raise ValueError("a TSA certificate needs a critical extendedKeyUsage timeStamping")
        self.key = key
        self.cert = cert
        self._asn1_cert = to_asn1_cert(cert)
        self._certs = [self._asn1_cert, *(to_asn1_cert(c) for c in chain or [])]
        # Kept as DER: each token gets freshly parsed objects (re-using constructed
        # asn1crypto objects across structures makes their encoding very slow).
        self._certs_der = [c.dump() for c in self._certs]
        self._subject_der = self._asn1_cert.subject.dump()
        self._issuer_der = self._asn1_cert.issuer.dump()
        self._serial = self._asn1_cert.serial_number
        # Signed attributes that are the same in every token, encoded once. The TSA
        # certificate is named by an ESSCertID (RFC 2634: SHA-1 of the certificate, as a
        # name, not as a signature), not an ESSCertIDv2: asn1crypto, when pyhanko copies
        # a token into a signature, re-encodes an ESSCertIDv2 (whose hashAlgorithm is a
        # DEFAULT) exponentially often: up to a second per token.
        self._fixed_attributes = [
            cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}).dump(),
            cms.CMSAttribute(
                {"type": "signing_certificate", "values": [as_signing_certificate(self._asn1_cert)]}
            ).dump(),
        ]

    def response(self, request: tsp.TimeStampReq, now: dt.datetime | None = None) -> _TimeStampResp:
        """The TimeStampResp for `request` (a rejection for a request we cannot serve)."""
        try:
            imprint = request["message_imprint"]
            algorithm = imprint["hash_algorithm"]["algorithm"].native
            digest = imprint["hashed_message"].native
            if request["version"].native != "v1":
                return _rejection("bad_data_format", "unsupported request version")
        except (ValueError, TypeError, KeyError):
            return _rejection("bad_data_format", "malformed request")
        if algorithm not in DIGEST_SIZES:
            return _rejection("bad_alg", f"unsupported hash algorithm {algorithm}")
        if not isinstance(digest, bytes) or len(digest) != DIGEST_SIZES[algorithm]:
            return _rejection("bad_data_format", "message imprint has the wrong length")
        if request["req_policy"].native not in (None, TSA_POLICY):
            return _rejection("unaccepted_policy", "unknown policy")
        now = now or dt.datetime.now(dt.UTC)
        info: dict[str, Any] = {
            "version": "v1",
            "policy": TSA_POLICY,
            # Fresh objects from plain values: reusing the request's asn1crypto objects
            # (when pyhanko built them) makes every later dump re-encode them, slowly.
            "message_imprint": tsp.MessageImprint(
                {"hash_algorithm": {"algorithm": algorithm}, "hashed_message": digest}
            ),
            "serial_number": secrets.randbits(64),
            "gen_time": now,
            "accuracy": tsp.Accuracy({"seconds": 1}),
            "tsa": asn1_x509.GeneralName(
                name="directory_name", value=asn1_x509.Name.load(self._subject_der)
            ),
        }
        if request["nonce"].native is not None:
            info["nonce"] = request["nonce"].native
        token = self._sign(
            tsp.TSTInfo(info).dump(), now, include_certs=bool(request["cert_req"].native)
        )
        return _TimeStampResp.load(_der(0x30, _GRANTED + token))

    def respond(self, request_der: bytes) -> bytes:
        """A TimeStampResp (DER) for a TimeStampReq (DER)."""
        try:
            request = tsp.TimeStampReq.load(request_der)
            request.native  # noqa: B018  (parses everything: malformed input fails here)
        except (ValueError, TypeError):
            return _rejection("bad_data_format", "malformed request").dump()
        return self.response(request).dump()

    def stamp(self, data: bytes) -> bytes:
        """A TimeStampToken (DER ContentInfo) over sha256(`data`), without HTTP."""
        response = self.response(timestamp_request(data))
        if response["status"]["status"].native != "granted":
            raise TimestampError(str(response["status"]["status_string"].native))
        return response["time_stamp_token"].dump()

    def _sign(self, tst_info: bytes, now: dt.datetime, include_certs: bool) -> bytes:
        """The TimeStampToken (DER ContentInfo) over `tst_info` (DER TSTInfo).

        The containers are assembled as DER by hand: asn1crypto, building them, sometimes
        spends ~0.1 s re-encoding nested algorithm identifiers.
        """
        attributes = [
            cms.CMSAttribute(
                {"type": "signing_time", "values": [cms.Time({"utc_time": core.UTCTime(now)})]}
            ).dump(),
            cms.CMSAttribute(
                {"type": "message_digest", "values": [hashlib.sha256(tst_info).digest()]}
            ).dump(),
            *self._fixed_attributes,
        ]
        signed_attrs = b"".join(sorted(attributes))  # DER: a SET is sorted by encoding
        if isinstance(self.key, rsa.RSAPrivateKey):
            signed = _der(0x31, signed_attrs)
            signature = self.key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
            mechanism = _SHA256_RSA
        else:
            signature = self.key.sign(_der(0x31, signed_attrs), ec.ECDSA(hashes.SHA256()))
            mechanism = _SHA256_ECDSA
        signer_info = _der(
            0x30,
            _der(0x02, b"\x01")  # version 1
            + _der(0x30, self._issuer_der + core.Integer(self._serial).dump())
            + _SHA256
            + _der(0xA0, signed_attrs)  # [0] IMPLICIT SET OF Attribute
            + mechanism
            + _der(0x04, signature),
        )
        encap = _der(0x30, _TST_INFO_OID + _der(0xA0, _der(0x04, tst_info)))
        certificates = _der(0xA0, b"".join(self._certs_der)) if include_certs else b""
        signed_data = _der(
            0x30,
            _der(0x02, b"\x03")  # version 3
            + _der(0x31, _SHA256)
            + encap
            + certificates
            + _der(0x31, signer_info),
        )
        return _der(0x30, _SIGNED_DATA_OID + _der(0xA0, signed_data))


def tsa_handler(authority: TimeStampAuthority) -> Any:
    """An aiohttp handler serving `authority` over HTTP (RFC 3161 section 3.4)."""

    async def handle(request: web.Request) -> web.Response:
        if request.content_type != QUERY_TYPE:
            raise web.HTTPUnsupportedMediaType(text=f"send {QUERY_TYPE}")
        if request.content_length is not None and request.content_length > MAX_REQUEST:
            raise web.HTTPRequestEntityTooLarge(
                max_size=MAX_REQUEST, actual_size=request.content_length
            )
        body = await request.content.read(MAX_REQUEST + 1)
        if len(body) > MAX_REQUEST:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_REQUEST, actual_size=len(body))
        return web.Response(body=authority.respond(body), content_type=REPLY_TYPE)

    return handle


def tsa_app(authority: TimeStampAuthority, path: str = "/tsa") -> web.Application:
    """A stand-alone aiohttp application serving the TSA at `path`."""
    app = web.Application()
    app.router.add_post(path, tsa_handler(authority))
    return app


class LocalTimeStamper(TimeStamper):
    """A pyhanko TimeStamper that asks a `TimeStampAuthority` in this process (no HTTP)."""

    def __init__(self, authority: TimeStampAuthority) -> None:
        super().__init__(include_nonce=True)
        self.authority = authority

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        # Same DER; pyhanko checks the status before it looks for the token.
        return tsp.TimeStampResp.load(self.authority.response(req).dump())


class KeepAliveTimeStamper(TimeStamper):
    """A pyhanko TimeStamper for a TSA over HTTP(S) that keeps its connection open.

    pyhanko's own HTTP client opens a new session (and connection) for every token, in a
    new event loop per signature; signing an agreement takes five tokens. This one keeps
    one blocking keep-alive connection per thread (signing runs in worker threads).
    """

    def __init__(self, url: str, timeout: float = REQUEST_TIMEOUT) -> None:
        super().__init__(include_nonce=True)
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) TSA URL: {url}")
        self.url = url
        self._parts = parts
        self._host: str = parts.hostname
        self._timeout = timeout
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            kind = (
                http.client.HTTPSConnection
                if self._parts.scheme == "https"
                else http.client.HTTPConnection
            )
            connection = kind(self._host, self._parts.port, timeout=self._timeout)
            self._local.connection = connection
        return connection

    def post(self, body: bytes) -> bytes:
        """POST a TimeStampReq (DER); the TimeStampResp (DER). Retries once on a stale
        keep-alive connection."""
        path = self._parts.path or "/"
        if self._parts.query:
            path += "?" + self._parts.query
        headers = {"Content-Type": QUERY_TYPE, "Accept": REPLY_TYPE}
        for attempt in (1, 2):
            connection = self._connection()
            try:
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                reply = response.read()
            except (OSError, http.client.HTTPException) as e:
                connection.close()
                self._local.connection = None
                if attempt == 2:
                    raise TimestampRequestError(f"TSA {self.url} could not be reached: {e}") from e
                continue
            if response.status != 200:
                raise TimestampRequestError(f"TSA {self.url} answered HTTP {response.status}")
            if response.getheader("Content-Type", "").split(";")[0].strip() != REPLY_TYPE:
                raise TimestampRequestError(f"TSA {self.url} did not answer {REPLY_TYPE}")
            return reply
        raise AssertionError("unreachable")

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        return tsp.TimeStampResp.load(self.post(req.dump()))


def timestamp_request(data: bytes, nonce: int | None = None) -> tsp.TimeStampReq:
    """A TimeStampReq over sha256(`data`) asking for the TSA's certificate in the token."""
    request: dict[str, Any] = {
        "version": "v1",
        "message_imprint": {
            "hash_algorithm": {"algorithm": "sha256"},
            "hashed_message": hashlib.sha256(data).digest(),
        },
        "cert_req": True,
    }
    if nonce is not None:
        request["nonce"] = nonce
    return tsp.TimeStampReq(request)


def token_from_response(response_der: bytes, data: bytes, nonce: int | None = None) -> bytes:
    """The token (DER) of a TimeStampResp, checked to be granted, over `data`, with `nonce`."""
    try:
        response = _TimeStampResp.load(response_der)
        status = response["status"]["status"].native
    except (ValueError, TypeError) as e:
        raise TimestampError(f"not a timestamp response: {e}") from e
    if status not in ("granted", "granted_with_mods"):
        text = response["status"]["status_string"].native
        raise TimestampError(f"the TSA refused: {status} {text or ''}".strip())
    token = parse_token(response["time_stamp_token"].dump())
    if token.hash_algorithm not in DIGEST_SIZES:
        raise TimestampError(f"unsupported hash algorithm {token.hash_algorithm}")
    if nonce is not None and token.nonce != nonce:
        raise TimestampError("the TSA answered with another nonce (replayed or mixed up)")
    if not token.covers(data):
        raise TimestampError("the timestamp is over other data")
    return bytes(response["time_stamp_token"].dump())


async def request_timestamp(
    url: str, data: bytes, session: aiohttp.ClientSession | None = None
) -> bytes:
    """A TimeStampToken (DER) over sha256(`data`) from the RFC 3161 TSA at `url`."""
    nonce = secrets.randbits(63)
    request = timestamp_request(data, nonce)
    own = session is None
    client = session or aiohttp.ClientSession()
    try:
        async with client.post(
            url,
            data=request.dump(),
            headers={"Content-Type": QUERY_TYPE},
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
        ) as response:
            if response.status != 200:
                raise TimestampError(f"TSA {url} answered HTTP {response.status}")
            if response.content_type != REPLY_TYPE:
                raise TimestampError(
                    f"TSA {url} answered {response.content_type}, not {REPLY_TYPE}"
                )
            body = await response.read()
    except aiohttp.ClientError as e:
        raise TimestampError(f"TSA {url} could not be reached: {e}") from e
    finally:
        if own:
            await client.close()
    return token_from_response(body, data, nonce)

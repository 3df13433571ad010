"""The pieces of signing/: the agreement model and its text, the local CA, the TSA."""

from __future__ import annotations

import asyncio
import datetime as dt
import stat

import pytest
from asn1crypto import tsp
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.test_signing_support import http_tsa, mark_png, sample_agreement
from tiaojie.archive.timestamp import TimestampError, verify_timestamp
from tiaojie.signing.authority import Authority
from tiaojie.signing.model import (
    MAX_TERMS,
    Agreement,
    Party,
    SignerMark,
    canonical_text,
    fingerprint,
)
from tiaojie.signing.pdf import FontMissing, find_font
from tiaojie.signing.tsa import (
    LocalTimeStamper,
    TimeStampAuthority,
    request_timestamp,
    token_from_response,
)

# -- model ---------------------------------------------------------------------------


def test_canonical_text_is_the_template_filled_in():
    agreement = sample_agreement(recording_id="rec_x", chain_head="ab" * 32)
    text = canonical_text(agreement)
    assert text.startswith("调解协议书\n\n案号：（2025）社调字第0042号\n")
    assert "申请人：张三（身份证号：110101199001011234）\n被申请人：李四\n" in text
    assert "调解员：王调解\n到场专家：赵律师\n" in text
    assert "\n1. 李四自本协议签订之日起" in text and "\n3. 双方今后" in text
    assert "录像哈希链头：" + "ab" * 32 in text
    english = canonical_text(sample_agreement("en"))
    assert english.startswith("Mediation Agreement\n\nCase number: ")
    assert "Applicant: 张三 (ID number: 110101199001011234)" in english
    assert "not recorded" in english


def test_fingerprint_is_sha256_of_the_text_and_follows_every_change():
    import hashlib

    agreement = sample_agreement()
    assert fingerprint(agreement) == hashlib.sha256(canonical_text(agreement).encode()).hexdigest()
    changed = Agreement.from_dict({**agreement.to_dict(), "place": "另一个调解室"})
    assert fingerprint(changed) != fingerprint(agreement)
    assert fingerprint(Agreement.from_dict(agreement.to_dict())) == fingerprint(agreement)


def test_text_is_normalised_so_the_same_visible_text_has_one_fingerprint():
    base = sample_agreement().to_dict()
    windows = {**base, "facts": base["facts"].replace("。", "。\r\n") + "  \r\n\r\n"}
    unix = {**base, "facts": base["facts"].replace("。", "。\n")}
    assert fingerprint(Agreement.from_dict(windows)) == fingerprint(Agreement.from_dict(unix))
    decomposed = {**base, "place": "Cafe\u0301"}
    composed = {**base, "place": "Café"}
    assert fingerprint(Agreement.from_dict(decomposed)) == fingerprint(
        Agreement.from_dict(composed)
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"case_number": 42}, "case number must be a string"),
        ({"case_number": " "}, "case number must not be empty"),
        ({"language": "fr"}, "language must be one of"),
        ({"parties": [{"name": "x" * 101, "role": "applicant"}]}, "party name is too long"),
        ({"parties": [{"name": "甲", "role": "judge"}]}, "party role must be one of"),
        ({"parties": "张三"}, "parties must be a list"),
        ({"facts": "x" * 20001}, "facts is too long"),
        ({"terms": ["x"] * (MAX_TERMS + 1)}, "terms: too many"),
        ({"terms": ["x" * 2001]}, "term 1 is too long"),
        ({"terms": ["ok", ""]}, "term 2 must not be empty"),
        ({"mediator": "王\x00调解"}, "control character"),
        ({"date": "2025\n11"}, "date must be a single line"),
        ({"chain_head": "xyz"}, "chain head must be 64 lowercase hex"),
        ({"recording_id": None, "chain_head": "a" * 64}, "needs the recording id"),
        ({"signature": "x"}, "unknown agreement field"),
    ],
)
def test_from_dict_rejects_bad_input_with_a_clear_message(change, message):
    with pytest.raises(ValueError, match=message):
        Agreement.from_dict({**sample_agreement(recording_id="rec_x").to_dict(), **change})


def test_a_draft_may_be_incomplete_but_says_what_is_missing():
    draft = Agreement(case_number="A-1")
    assert canonical_text(draft).startswith("调解协议书")
    assert draft.incomplete() == [
        "no applicant",
        "no respondent",
        "no mediator",
        "no facts",
        "no performance",
        "no date",
        "no place",
        "no terms",
    ]
    assert sample_agreement().incomplete() == []
    assert Party("张三", "applicant").to_dict() == {
        "name": "张三",
        "role": "applicant",
        "id_number": None,
    }


def test_signer_mark_is_validated():
    fp = "0" * 64
    assert SignerMark("张三", "applicant", 1.0, mark_png(), fp).role == "applicant"
    with pytest.raises(ValueError, match="PNG"):
        SignerMark("张三", "applicant", 1.0, b"GIF89a", fp)
    with pytest.raises(ValueError, match="signer role"):
        SignerMark("张三", "expert", 1.0, mark_png(), fp)
    with pytest.raises(ValueError, match="fingerprint"):
        SignerMark("张三", "mediator", 1.0, mark_png(), "abc")


def test_font_is_found_or_the_package_is_named(monkeypatch, tmp_path):
    path, index = find_font()
    assert path.is_file() and index >= 0
    monkeypatch.setenv("TIAOJIE_PDF_FONT", str(tmp_path / "none.ttf"))
    with pytest.raises(FontMissing, match="no such font file"):
        find_font()
    monkeypatch.delenv("TIAOJIE_PDF_FONT")
    monkeypatch.setattr("tiaojie.signing.pdf.FONT_CANDIDATES", ())
    with pytest.raises(FontMissing, match="fonts-noto-cjk"):
        find_font()


# -- authority ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def authority(tmp_path_factory):
    return Authority.load_or_create(tmp_path_factory.mktemp("keys"))


def test_authority_is_created_once_with_private_keys_0600(authority):
    keys = authority.keys_dir
    for name in ("ca.key.pem", "seal.key.pem", "tsa.key.pem"):
        assert stat.S_IMODE((keys / name).stat().st_mode) == 0o600
    again = Authority.load_or_create(keys)
    assert again.ca_cert == authority.ca_cert and again.tsa_cert == authority.tsa_cert
    basic = authority.ca_cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.value.ca and basic.critical
    usage = authority.tsa_cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert usage.critical and list(usage.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    authority.tsa_cert.verify_directly_issued_by(authority.ca_cert)
    authority.organisation_seal_cert.verify_directly_issued_by(authority.ca_cert)


def test_event_certificate_names_the_signer_and_is_short_lived(authority):
    key, cert = authority.issue_event_certificate("李四", "respondent")
    cert.verify_directly_issued_by(authority.ca_cert)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "李四"
    assert cert.subject.get_attributes_for_oid(NameOID.TITLE)[0].value == "respondent"
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= dt.timedelta(days=1, minutes=5)
    assert cert.public_key() == key.public_key()
    _, other = authority.issue_event_certificate("李四", "respondent")
    assert other.serial_number != cert.serial_number


def test_crl_is_fresh_and_lists_revoked_serials(authority):
    crl = authority.crl()
    assert crl.is_signature_valid(authority.ca_cert.public_key())
    assert crl.next_update_utc > dt.datetime.now(dt.UTC)
    _, cert = authority.issue_event_certificate("某人", "applicant")
    authority.revoke(cert.serial_number)
    assert authority.crl().get_revoked_certificate_by_serial_number(cert.serial_number)


# -- TSA -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tsa(authority):
    return TimeStampAuthority(authority.tsa_key, authority.tsa_cert)


def test_token_verifies_against_the_ca_and_only_for_its_data(tsa, authority):
    token = tsa.stamp(b"seal line")
    info = verify_timestamp(token, b"seal line", [authority.ca_cert])
    assert info.trusted and "built-in TSA" in info.tsa_subject
    assert abs((info.time - dt.datetime.now(dt.UTC)).total_seconds()) < 60
    assert verify_timestamp(token, b"seal line").trusted is None  # no trust root: unchecked
    with pytest.raises(TimestampError, match="over other data"):
        verify_timestamp(token, b"seal linE", [authority.ca_cert])
    forged = bytearray(token)
    forged[-10] ^= 0xFF  # inside the signature value
    with pytest.raises(TimestampError):
        verify_timestamp(bytes(forged), b"seal line", [authority.ca_cert])


def test_token_from_another_ca_is_not_trusted(tsa, tmp_path):
    other = Authority.load_or_create(tmp_path / "other")
    assert verify_timestamp(tsa.stamp(b"x"), b"x", [other.ca_cert]).trusted is False


def test_malformed_and_unsupported_requests_are_rejected(tsa):
    for request in (b"garbage", b""):
        with pytest.raises(TimestampError, match="refused"):
            token_from_response(tsa.respond(request), b"x")
    md5 = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": {"algorithm": "md5"},
                "hashed_message": b"0" * 16,
            },
        }
    )
    with pytest.raises(TimestampError, match="unsupported hash"):
        token_from_response(tsa.respond(md5.dump()), b"x")


def test_http_tsa_and_client(tsa, authority):
    with http_tsa(tsa) as url:
        token = asyncio.run(request_timestamp(url, b"chain head"))
        assert verify_timestamp(token, b"chain head", [authority.ca_cert]).trusted
        with pytest.raises(TimestampError, match="HTTP 404"):
            asyncio.run(request_timestamp(url + "/nothing", b"x"))


def test_local_timestamper_serves_pyhanko(tsa):
    import hashlib

    digest = hashlib.sha256(b"document").digest()
    token = asyncio.run(LocalTimeStamper(tsa).async_timestamp(digest, "sha256"))
    info = token["content"]["encap_content_info"]["content"].parsed
    assert info["message_imprint"]["hashed_message"].native == digest

import hashlib
import hmac
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartpos.cards import (
    Brand,
    CardError,
    PanTokenizer,
    brand_of,
    last4,
    luhn_check_digit,
    luhn_ok,
    mask_pan,
    normalize_pan,
)

KEY = b"k" * 16
OTHER_KEY = b"o" * 32


def with_check_digit(partial: str) -> str:
    return partial + luhn_check_digit(partial)


digit_strings = st.text(alphabet="0123456789", min_size=1, max_size=30)


@st.composite
def valid_pans(draw: st.DrawFn, min_len: int = 12, max_len: int = 19) -> str:
    partial = draw(st.text(alphabet="0123456789", min_size=min_len - 1, max_size=max_len - 1))
    return with_check_digit(partial)


# --- Luhn -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pan",
    [
        "79927398713",  # the textbook example
        "4111111111111111",
        "5555555555554444",
        "378282246310005",
        "6011111111111117",
        "3530111333300000",
        "6200000000000005",
        "6212345678901232",
    ],
)
def test_luhn_known_valid(pan: str) -> None:
    assert luhn_ok(pan)
    assert luhn_check_digit(pan[:-1]) == pan[-1]


@pytest.mark.parametrize(
    "pan", ["79927398710", "4111111111111112", "6212345678901234", "", "0", "4111-1111", "٤٤"]
)
def test_luhn_known_invalid(pan: str) -> None:
    assert not luhn_ok(pan)


@pytest.mark.parametrize("partial", ["", "12a4", "１２３", "12 34"])
def test_luhn_check_digit_rejects_non_digits(partial: str) -> None:
    with pytest.raises(CardError):
        luhn_check_digit(partial)


@given(digit_strings)
def test_luhn_check_digit_completes(partial: str) -> None:
    assert luhn_ok(with_check_digit(partial))


@given(digit_strings, st.data())
def test_luhn_catches_every_single_digit_error(partial: str, data: st.DataObject) -> None:
    pan = with_check_digit(partial)
    pos = data.draw(st.integers(0, len(pan) - 1))
    wrong = data.draw(st.sampled_from([d for d in "0123456789" if d != pan[pos]]))
    assert not luhn_ok(pan[:pos] + wrong + pan[pos + 1 :])


# --- normalize_pan ----------------------------------------------------------------------------


def test_normalize_strips_spaces_and_dashes() -> None:
    assert normalize_pan("6212 3456-7890 1232") == "6212345678901232"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("6212345678901234", "Luhn"),
        ("41111111110", "digits"),  # 11 digits, Luhn-valid but too short
        (with_check_digit("4" * 19), "digits"),  # 20 digits
        ("6212345678901232x", "digits"),
        ("6212\t345678901232", "digits"),
        ("", "digits"),
    ],
)
def test_normalize_rejects(text: str, problem: str) -> None:
    with pytest.raises(CardError, match=problem) as err:
        normalize_pan(text)
    assert "6212345678901232" not in str(err.value)


@given(valid_pans())
def test_normalize_accepts_every_valid_pan(pan: str) -> None:
    assert normalize_pan(pan) == pan


# --- brand ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pan", "brand"),
    [
        ("6212345678901232", Brand.UNIONPAY),
        ("6221260000000000", Brand.UNIONPAY),  # UnionPay/Discover co-badged: UnionPay in China
        ("6229250000000000", Brand.UNIONPAY),
        ("8100000000000000", Brand.UNIONPAY),
        ("8171999999999999", Brand.UNIONPAY),
        ("8172000000000000", Brand.UNKNOWN),
        ("8099999999999999", Brand.UNKNOWN),
        ("4111111111111111", Brand.VISA),
        ("5100000000000000", Brand.MASTERCARD),
        ("5599999999999999", Brand.MASTERCARD),
        ("5000000000000000", Brand.UNKNOWN),
        ("5600000000000000", Brand.UNKNOWN),
        ("2221000000000000", Brand.MASTERCARD),
        ("2720999999999999", Brand.MASTERCARD),
        ("2220999999999999", Brand.UNKNOWN),
        ("2721000000000000", Brand.UNKNOWN),
        ("340000000000000", Brand.AMEX),
        ("370000000000000", Brand.AMEX),
        ("350000000000000", Brand.UNKNOWN),
        ("3528000000000000", Brand.JCB),
        ("3589999999999999", Brand.JCB),
        ("3527999999999999", Brand.UNKNOWN),
        ("3590000000000000", Brand.UNKNOWN),
        ("6011000000000000", Brand.DISCOVER),
        ("6012000000000000", Brand.UNKNOWN),
        ("6440000000000000", Brand.DISCOVER),
        ("6499999999999999", Brand.DISCOVER),
        ("6430000000000000", Brand.UNKNOWN),
        ("6500000000000000", Brand.DISCOVER),
        ("6600000000000000", Brand.UNKNOWN),
        ("1234567890123456", Brand.UNKNOWN),
        ("6212 3456 7890 1232", Brand.UNIONPAY),
        ("62", Brand.UNIONPAY),  # a BIN prefix is enough
        ("8", Brand.UNKNOWN),
    ],
)
def test_brand_of(pan: str, brand: Brand) -> None:
    assert brand_of(pan) is brand


@pytest.mark.parametrize("pan", ["", "62x", "4" * 20])
def test_brand_of_rejects_non_pans(pan: str) -> None:
    with pytest.raises(CardError):
        brand_of(pan)


@given(st.text(alphabet="0123456789", min_size=0, max_size=17))
def test_prefix_62_is_always_unionpay(rest: str) -> None:
    assert brand_of("62" + rest) is Brand.UNIONPAY


def test_brand_labels_and_domestic_group() -> None:
    assert [(b.label_en, b.label_zh) for b in Brand] == [
        ("UnionPay", "银联"),
        ("Visa", "维萨"),
        ("Mastercard", "万事达"),
        ("American Express", "美国运通"),
        ("JCB", "JCB"),
        ("Discover", "发现"),
        ("Unknown", "未知"),
    ]
    assert [b for b in Brand if b.is_domestic] == [Brand.UNIONPAY]
    assert Brand("visa") is Brand.VISA
    assert str(Brand.AMEX) == "amex"


# --- masking ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pan", "masked"),
    [
        ("6212345678901234", "621234******1234"),
        ("6212345678901234567", "621234*********4567"),
        ("378282246310005", "37828******0005"),
        ("123456789012", "12******9012"),
        ("1234567890123", "123******0123"),
        ("12345678901234", "1234******1234"),
        ("6212 3456 7890 1234", "621234******1234"),
    ],
)
def test_mask_pan(pan: str, masked: str) -> None:
    assert mask_pan(pan) == masked


@given(st.text(alphabet="0123456789", min_size=12, max_size=19))
def test_mask_never_shows_more_than_first6_last4(pan: str) -> None:
    masked = mask_pan(pan)  # no Luhn requirement: a mistyped PAN can be masked too
    assert len(masked) == len(pan)
    head = re.match(r"[0-9]*", masked)
    assert head is not None
    shown_first = len(head.group())
    assert shown_first <= 6
    assert masked[shown_first:-4] == "*" * (len(pan) - shown_first - 4)
    assert masked.count("*") >= 6
    assert masked[:shown_first] == pan[:shown_first]
    assert masked[-4:] == pan[-4:] == last4(pan)


@pytest.mark.parametrize("pan", ["12345678901", "4" * 20, "6212x45678901234", ""])
def test_mask_and_last4_reject_non_pans(pan: str) -> None:
    with pytest.raises(CardError):
        mask_pan(pan)
    with pytest.raises(CardError):
        last4(pan)


# --- tokens -----------------------------------------------------------------------------------


def test_token_is_truncated_hmac_sha256_of_normalized_pan() -> None:
    expected = hmac.new(KEY, b"6212345678901232", hashlib.sha256).hexdigest()[:32]
    assert PanTokenizer(KEY).token("6212 3456 7890 1232") == expected


@given(valid_pans())
def test_token_deterministic_and_keyed(pan: str) -> None:
    token = PanTokenizer(KEY).token(pan)
    assert re.fullmatch(r"[0-9a-f]{32}", token)
    assert PanTokenizer(KEY).token(pan) == token
    assert PanTokenizer(OTHER_KEY).token(pan) != token
    assert pan not in token


def test_tokens_differ_between_pans() -> None:
    t = PanTokenizer(KEY)
    assert t.token("4111111111111111") != t.token("6212345678901232")


def test_tokenizer_rejects_short_key_and_bad_pan() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        PanTokenizer(b"x" * 15)
    with pytest.raises(CardError):
        PanTokenizer(KEY).token("6212345678901234")


def test_tokenizer_repr_hides_key() -> None:
    assert "kkkk" not in repr(PanTokenizer(KEY))


def test_digest_is_keyed_and_separated_by_purpose() -> None:
    text = "02=6212345678901232;4=000000001234;"
    t = PanTokenizer(KEY)
    d = t.digest("request-fingerprint", text)
    assert re.fullmatch(r"[0-9a-f]{64}", d)
    assert d == t.digest("request-fingerprint", text)
    assert d != PanTokenizer(OTHER_KEY).digest("request-fingerprint", text)
    assert d != t.digest("other-purpose", text)
    # Not an unkeyed hash anyone could recompute from a guessed PAN.
    assert d != hashlib.sha256(text.encode()).hexdigest()

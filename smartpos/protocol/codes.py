"""ISO 8583 response codes (field 39) as used by CUP-style acquirers, with bilingual text."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ResponseCode:
    code: str
    en: str
    zh: str

    @property
    def approved(self) -> bool:
        return self.code in ("00", "10", "11")


_TABLE = [
    ResponseCode("00", "Approved", "交易成功"),
    ResponseCode("01", "Refer to card issuer", "请持卡人与发卡行联系"),
    ResponseCode("03", "Invalid merchant", "无效商户"),
    ResponseCode("04", "Pick up card", "没收卡"),
    ResponseCode("05", "Do not honor", "不予承兑"),
    ResponseCode("12", "Invalid transaction", "无效交易"),
    ResponseCode("13", "Invalid amount", "无效金额"),
    ResponseCode("14", "Invalid card number", "无效卡号"),
    ResponseCode("22", "Suspected malfunction", "故障怀疑"),
    ResponseCode("25", "Unable to locate original transaction", "找不到原始交易"),
    ResponseCode("30", "Format error", "报文格式错误"),
    ResponseCode("40", "Function not supported", "请求的功能尚不支持"),
    ResponseCode("41", "Lost card", "挂失卡"),
    ResponseCode("43", "Stolen card", "被窃卡"),
    ResponseCode("45", "Chip card swiped: insert or tap the card", "请使用芯片"),
    ResponseCode("51", "Insufficient funds", "余额不足"),
    ResponseCode("54", "Expired card", "过期卡"),
    ResponseCode("55", "Incorrect PIN", "密码错误"),
    ResponseCode("57", "Transaction not permitted to cardholder", "不允许持卡人进行的交易"),
    ResponseCode("58", "Transaction not permitted to terminal", "不允许终端进行的交易"),
    ResponseCode("61", "Exceeds amount limit", "超出金额限制"),
    ResponseCode("62", "Restricted card", "受限制的卡"),
    ResponseCode("64", "Original amount incorrect", "原始金额不正确"),
    ResponseCode("65", "Exceeds frequency limit", "超出取款次数限制"),
    ResponseCode("75", "PIN tries exceeded", "允许的输入PIN次数超限"),
    ResponseCode("77", "Batch number mismatch, sign on again", "批次号不一致,请重新签到"),
    ResponseCode("91", "Issuer unavailable", "发卡方不能操作"),
    ResponseCode("94", "Duplicate transmission", "重复交易"),
    ResponseCode("96", "System malfunction", "系统异常"),
    ResponseCode("97", "Terminal not registered", "终端未登记"),
    ResponseCode("98", "No answer from issuer", "发卡方超时"),
    ResponseCode("99", "PIN format error", "PIN格式错"),
    ResponseCode("A0", "MAC verification failed, sign on again", "校验错,请重新签到"),
]

CODES: dict[str, ResponseCode] = {rc.code: rc for rc in _TABLE}


def describe(code: str) -> ResponseCode:
    """Text for a response code; unknown codes are reported as such, never guessed."""
    return CODES.get(code) or ResponseCode(code, f"Declined (code {code})", f"交易失败({code})")


# Field 39 of a reversal (0400) says why the terminal reverses.
REVERSAL_NO_RESPONSE = "98"
REVERSAL_MAC_ERROR = "A0"
REVERSAL_OTHER = "06"

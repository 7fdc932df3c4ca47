"""DUKPT (ANSI X9.24-1:2009 TDES, ANSI X9.24-3-2017 AES) against the standards' test vectors.

The vectors are the standards' published ones: X9.24-1:2009 Annex A.4 (BDK
0123456789ABCDEFFEDCBA9876543210, initial KSN FFFF9876543210E00000) and the X9.24-3-2017 test
vector supplement (BDK FEDCBA9876543210F1F1F1F1F1F1F1F1 and its AES-256 doubling, initial key
ID 1234567890123456), as reproduced in openemv/dukpt's test suite (test/dukpt_tdes_test.c,
test/dukpt_aes128_test.c, test/dukpt_aes256_test.c).
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from smartpos.keys.dukpt import (
    AES_LAST_COUNTER,
    TDES_LAST_COUNTER,
    AesDukptRegister,
    AesKeyType,
    AesKeyUsage,
    DukptError,
    TdesDukptRegister,
    TdesDukptTransaction,
    TdesKeyUsage,
    _Counter,
    aes_counter,
    aes_initial_key,
    aes_kcv,
    aes_transaction_key,
    aes_working_key,
    tdes_counter,
    tdes_initial_ksn,
    tdes_ipek,
    tdes_transaction_key,
    tdes_working_key,
)
from smartpos.keys.mac import MacAlgorithm, compute_mac
from smartpos.keys.pinblock import PinError

TDES_BDK = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
TDES_INITIAL_KSN = bytes.fromhex("FFFF9876543210E00000")
TDES_IPEK = bytes.fromhex("6AC292FAA1315B4D858AB3A3D7D5933A")
PIN = "1234"
TDES_PAN = "4012345678909"
# The transaction data X9.24-1's examples MAC and encrypt (zero-padded to whole blocks).
TXN_DATA = b"4012345678909D987"

AES_BDK = bytes.fromhex("FEDCBA9876543210F1F1F1F1F1F1F1F1")
AES256_BDK = AES_BDK * 2
AES_IKID = bytes.fromhex("1234567890123456")
AES128_IK = bytes.fromhex("1273671EA26AC29AFA4D1084127652A1")
AES256_IK = bytes.fromhex("CE9CE0C101D1138F97FB6CAD4DF045A7083D4EAE2D35A31789D01CCF0949550F")

# ANSI X9.24-1:2009 A.4.2, the initial sequence: KSN, transaction key, PIN block (PIN 1234,
# PAN 4012345678909), request MAC, response MAC (left 4 bytes of X9.19), encrypted request.
TDES_INITIAL_SEQUENCE = [
    (
        "FFFF9876543210E00001",
        "042666B49184CFA368DE9628D0397BC9",
        "1B9C1845EB993A7A",
        "9CCC7817",
        "20364223",
        "FC0D53B7EA1FDA9EE68AAF2E70D9B9506229BE2AA993F04F",
    ),
    (
        "FFFF9876543210E00002",
        "C46551CEF9FD24B0AA9AD834130D3BC7",
        "10A01C8D02C69107",
        "F608A9BC",
        "D1FCA6BE",
        "A2B4E70F846E63D68775B7215EB4563DFD3037244C61CC13",
    ),
    (
        "FFFF9876543210E00003",
        "0DF3D9422ACA56E547676D07AD6BADFA",
        "18DC07B94797B466",
        "20B59A4F",
        "BAD4CC9C",
        "BD751E65F10E75B6C1D5B1D283496A36C2DE21D993C387A7",
    ),
    (
        "FFFF9876543210E00004",
        "279C0F6AEED0BE652B2C733E1383AE91",
        "0BC79509D5645DF7",
        "C7BFA6CC",
        "1EB08AEE",
        "1118F50947441BBDA3C8C70220021A12EC31CC473F7215F4",
    ),
    (
        "FFFF9876543210E00005",
        "5F8DC6D2C845C125508DDC048093B83F",
        "5BC0AF22AD87B327",
        "0202B963",
        "5CBE3E81",
        "9FD7BD1EC28845ACA93367A9DA9317BD555C6B33AE22D365",
    ),
    (
        "FFFF9876543210E00006",
        "5E415CB0BAF9F03CD0C14B63FB62FF43",
        "A16DF70AE36158D8",
        "CF6C72E6",
        "C60D38E8",
        "DC526613AD9095C1CEC60C41B7686ED606AC1AA2F4F54912",
    ),
    (
        "FFFF9876543210E00007",
        "0C8F780B7C8B49D0AE84A9EB2A6CE660",
        "27711C16CB257F8E",
        "B11EB0D9",
        "053EFD39",
        "24700BD6F17751531F2A16CE2AF7731101E6F87839C67244",
    ),
    (
        "FFFF9876543210E00008",
        "27F66D5244FF62E1AA6F6120EDEB4280",
        "50E55547A5027551",
        "3679055B",
        "7FACA91D",
        "5F6584DEAFC51B48A239B51C2DACA97176C01D9CA8EDC33C",
    ),
    (
        "FFFF9876543210E00009",
        "27E31064FDC565698900E2057F658E7E",
        "536CF7F678ACFC8D",
        "26AA23DC",
        "37F17B8F",
        "7CB9080923ED4D7D8D1B8A2849331684CC910522023BE537",
    ),
    (
        "FFFF9876543210E0000A",
        "6CF2500A22507C7CC776CEADC1E33014",
        "EDABBA23221833FE",
        "1632621C",
        "CE038CC9",
        "C221F5A8CA5DA909BE04938E0FB8DFCFB30ED0D62B590663",
    ),
    (
        "FFFF9876543210E0000B",
        "3E8260BA04B2D620C01482B3819A18B7",
        "2328981C57B4BDBA",
        "76D95CB4",
        "27C9FA5E",
        "98A271C13E4AEE80C6343867F2F0F6C55E8B7E5645866A0B",
    ),
    (
        "FFFF9876543210E0000C",
        "B716E1E11CF53D80726CAEE75C3A624F",
        "038D03CC926CF286",
        "BAD9D84D",
        "6D2ECC6A",
        "273CBE2F275B1C29D53F3C01A24DEC73F92C3BE219FFCB91",
    ),
    (
        "FFFF9876543210E0000D",
        "E072EDF95340535FB6C581C58FBF2533",
        "6C8AA97088B62C68",
        "AAAFB598",
        "7E40B492",
        "7290CB9D6F6E35A9B8A34C590A93696F8FE0137A8558884C",
    ),
    (
        "FFFF9876543210E0000E",
        "A80046087F5B8F245AAD95E18429084F",
        "F17C9E1D72CD4950",
        "4EC79532",
        "55233989",
        "48207931E5F6E5E3E02E7E1D7BED4E3232FCA67E66A31F61",
    ),
    (
        "FFFF9876543210E0000F",
        "93DD5B956C4878472E453AAEFD32A5AA",
        "B170F6E7F7F2F64A",
        "82500D05",
        "AFE23CBA",
        "166246602B1255114A4012513B0DD4A9E19E82C945860C55",
    ),
    (
        "FFFF9876543210E00010",
        "59598DCBD9BD94C094165CE453585F57",
        "D5D9638559EF53D6",
        "D39D3A59",
        "9E933C88",
        "53EDA44BDBCA037B2D3FEAEBAF73499336767BD1D0D09679",
    ),
    (
        "FFFF9876543210E00011",
        "2B5F01F4F0CC05EA639D523231BF1BA2",
        "D544F8CDD292C863",
        "F094AF93",
        "631E7B39",
        "086F3F46238B99AFB35DA42029675EE1FAB1C606307B35FB",
    ),
    (
        "FFFF9876543210E00012",
        "9CF640F279C2AEE615F725EEEAC2CBAF",
        "7A21BD10F36DC41D",
        "A819AF04",
        "E93F5E27",
        "270439430E60BFC600FE3DC7E7AD8C72D22D5284EC676EF2",
    ),
    (
        "FFFF9876543210E00013",
        "C3DF489FDF1153B4F03DE97C27DC4C2F",
        "78649BD17D0DFA60",
        "79285A17",
        "FCE7A5A5",
        "2FEAE132FA0E46B4ABF55A87477AFA907E598868BCC236DA",
    ),
    (
        "FFFF9876543210E00014",
        "658488507721B3F14737FA93F923CBD2",
        "7E7E16EA0C31AD56",
        "E2B2637F",
        "A10E94AA",
        "A16A61328E36A21858B5FBFBE7BAF7985F5C54F5B8C12298",
    ),
    (
        "FFFF9876543210E00015",
        "E161D1956A61F6D2F37AFD7F9CC3699A",
        "72105C22EBC791E6",
        "B2033EBD",
        "BDA3AEE1",
        "42A9342FD5C1ACD20E137950A7368D2BBE884275B7906918",
    ),
]
# ANSI X9.24-1:2009 A.4.3, the rollover sequence: KSN, transaction key, PIN block, MACs.
TDES_ROLLOVER_SEQUENCE = [
    (
        "FFFF9876543210EFF800",
        "F9CDFEBF4F5B1D9EB3EC12454527E176",
        "33365F5CC6F23C35",
        "23E3CB62",
        "5776C376",
    ),
    (
        "FFFF9876543210EFF801",
        "5BEE92627E97825C911BF619DF72CA3B",
        "3A86BF003F835C9D",
        "97623632",
        "69D1EF47",
    ),
    (
        "FFFF9876543210EFF802",
        "64CA2F8AB93F61B01620B00BF77C7301",
        "3DB977D05C36DF3F",
        "72608521",
        "BF7036B7",
    ),
    (
        "FFFF9876543210EFF804",
        "35A168695B3BA83307E871C42021DD37",
        "BA83243305712099",
        "D86687B7",
        "645A0A18",
    ),
    (
        "FFFF9876543210EFF808",
        "12C380FCB72ED3C26FC6079AF63F4787",
        "B0DA04AC90A36D85",
        "5E00713D",
        "E8D8026A",
    ),
    (
        "FFFF9876543210EFF810",
        "D8007C833A1E3C49C6889B97A68C54FF",
        "2CF02BD9C309EEDA",
        "1BCCF968",
        "9623FF45",
    ),
    (
        "FFFF9876543210EFF820",
        "A9C9FF9B735FDD49591F296B0BF0FD70",
        "9D1E2F77AEEE81C6",
        "2F6D2191",
        "FF864D19",
    ),
    (
        "FFFF9876543210EFF840",
        "0E3E221062CB5E03A384602783A004FA",
        "40870B0F8BA2011C",
        "4DA4CBAC",
        "3CE7AD50",
    ),
    (
        "FFFF9876543210EFF880",
        "CA8225C587124DFBB87F279C0BE29727",
        "22E340D6ABB40981",
        "95C43BC2",
        "73D03F0B",
    ),
    (
        "FFFF9876543210EFF900",
        "906AAC1751D4971A144D52C76C6E1F97",
        "1A4C10AFBA03A430",
        "D6BEAA71",
        "5D461B71",
    ),
    (
        "FFFF9876543210EFFA00",
        "2B9E2CE7C2750337E10B54D2989EA6AF",
        "849763B43E5F9CFF",
        "93930C9F",
        "531DA5F9",
    ),
    (
        "FFFF9876543210EFFC00",
        "F9430DF975082491C77BE4EF4FDB91EE",
        "DEFC6F09F8927B71",
        "2917C6EF",
        "AA8D2DA6",
    ),
    (
        "FFFF9876543210F00000",
        "AA4D58DB653EC74A48C75F2F047DD2B5",
        "73EC88AD0AC5830E",
        "7DFA9315",
        "1444BEC3",
    ),
]
# ANSI X9.24-3-2017 supplement, AES128 BDK: KSN, transaction key, then the AES-128 PIN,
# MAC generation and data encryption keys.
AES128_FIRST_EIGHT = [
    (
        "123456789012345600000001",
        "4F21B565BAD9835E112B6465635EAE44",
        "AF8CB133A78F8DC2D1359F18527593FB",
        "A2DC23DE6FDE0824A2BC321E08E4B8B7",
        "A35C412EFD41FDB98B69797C02DCD08F",
    ),
    (
        "123456789012345600000002",
        "2F34D68DE10F68D38091A73B9E7C437C",
        "D30BDC73EC9714B000BEC66BDB7B6D09",
        "484C3B06E8562704528CD5B46FB12FB6",
        "D639514AA33AC43AD9229E433D6D4E5B",
    ),
    (
        "123456789012345600000003",
        "031504E530365CF81264238540518318",
        "7D69F01F3B45449F62C7816ECE723268",
        "A5DF7D9D800CA769766F0C77CA4E6E6C",
        "EF17F6AB45B4820C93A3DCB21BC491AD",
    ),
    (
        "123456789012345600000004",
        "0EEFC7ADA628BA68878DA9165A8A1887",
        "91A0588318EC2673214271F70137896E",
        "E6E4679647D8A9057C1FC15537CB4C4E",
        "B3BD44C08BB6BA27C3BB4711D7D70387",
    ),
    (
        "123456789012345600000005",
        "C2A7AC328A5DA2D6002D62465BFC028B",
        "35A43BC9EFEB09C756204B57E3FB7D4D",
        "0588185FE1FF8C7E22FAD78C1C61F065",
        "CA02DF6F30B39E14BD0B4A30E460920F",
    ),
    (
        "123456789012345600000006",
        "D30F7D9351DA58448A2F5E92B4EE3B7D",
        "02DCC6CD1201A3A2CA7099559C862123",
        "7B60F72A5639C0EE7EB2100FA80BB793",
        "C9B8A7C4E486180B2229115164F0B293",
    ),
    (
        "123456789012345600000007",
        "A8253CEED9AC042C54F75D35C8352278",
        "6ECF912F3B18CA11A7A27BB60705FD09",
        "BAA08CA263C69525BC6B1BA8F4275D69",
        "0FA8F1F0A2DD7B1005A862D77CDED698",
    ),
    (
        "123456789012345600000008",
        "718EE6CF0B27E53D5F7AF99C4D8146A2",
        "4D9DF3FBEE3448FC3E676D04320A90F5",
        "6FD572E5D59E618875F193484F9178FB",
        "650F34204ABD4E57764D61AC3D266FB1",
    ),
]
# The same supplement: counters 0x1FFFE, 0x20000, 0x20001 and the last four.
AES128_LATER = [
    ("12345678901234560001FFFE", "E21E8C8D347F8561A2BE752DAA85A111"),
    ("123456789012345600020000", "F7AE9025468A25D37B7249CFFED224C8"),
    ("123456789012345600020001", "692C8EA4013645135B36497131DF9D2C"),
    ("1234567890123456FFFE2000", "48E585B694EB0B18D5C35443E163C0BA"),
    ("1234567890123456FFFE4000", "396C2C7CA1EA701C03B86B7D41F0C562"),
    ("1234567890123456FFFE8000", "0387625F189B58AE03EF0E8CCA41105E"),
    ("1234567890123456FFFF0000", "F6BA59389BD14A9855BE9727E7C52E3C"),
]
# ANSI X9.24-3-2017 supplement, AES256 BDK: KSN, transaction key, then the AES-128 PIN,
# MAC generation and data encryption keys, then the AES-256 ones.
AES256_FIRST_EIGHT = [
    (
        "123456789012345600000001",
        "54AC2B32B145EA4A554CB8BC44B17467063A799856B1CCC2A138D36E8DBF78B3",
        "09C9C432966811D6B2C3336BAC1B1202",
        "F04A1FABD4176E15490CEC82E217A96D",
        "616D59AE91F8CC7016F89FDA29605FA4",
        "8C1AB7BEE973829E30242E0BBBDD4946D540C98FC1B5BDCF94790001A23FD502",
        "61DABDF4B340CF461EE860B1D1AB55357142BD2D6977306859CF49AEFE8F1549",
        "71EB36C9A6B7F801D1D1700C29741FC5A5C4E9B45D742DA7AF6992B8AA29AF58",
    ),
    (
        "123456789012345600000002",
        "5DD5A0253842BBBE1D7C0DA27021412C6F1FAB53FB928DEAE56DA06090A9DE97",
        "D632226A80795D13A80AFE66A3E97B01",
        "DD99D77B4E2AB538B26BB6A8B3FB0BE3",
        "07B79D9BFF3633C07A9FDDF132070B30",
        "3583D6CD02FC38822CC71A8D7678E04F4A8556335E6CC66863D3DADC5AEE2C62",
        "4417356219B2F93CE3F2671623DDCAB58A8B85AD80662A8D628024000956D426",
        "D0AC9F71F875FFFF3A83778F72F39EBB0924A5A526617AF669665E0A19725465",
    ),
    (
        "123456789012345600000003",
        "8EEEF7C464AE415BB1D73FAED21993CD669F7999092A579EC6DD3CC680C65171",
        "C2CBD3D766B16F9F82F4EE3F74478918",
        "5A742A4A0403B3D7BB30842DAFBB5972",
        "706E4E629E466BED956548E7B0D90C3D",
        "96A1AB5D37CB7CF81DDE64F66C46E0389B833E7AD5F4E44C791F04FAFDA6DA0E",
        "35BD00A46F2A2BD127F565FBF2974B735AE3BB70242C0A415857CF69B2C2691A",
        "8E70D5DF53F48ED2F2A0B54FC4F45C844579BE96F6F161222CDD50193E2F737F",
    ),
    (
        "123456789012345600000004",
        "C18CBED570B3B89ECADA7CEC9C224CD5A86ECF3DE377D3EFAB720F8C4D76B9D0",
        "58A3779C1E24B3EDAF068609E7E56D59",
        "C531F7E08514858C445D5F54BFE7DA8E",
        "CF3A4D9CA7E962E4023A84A2FE47DC80",
        "420AA584BF215C4777E93009B56D08DE80687021D07ED96349FF71379CE5636D",
        "D80617C3C5869A8DCF0DA5383D032A0D6E6C51C0BF649BE992BE84AA191AE326",
        "41D23F7D78E22A978D726BC71D266374263120EE49146CE5C1291FD0EE7DDD31",
    ),
    (
        "123456789012345600000005",
        "6B3C3C93307151C25DC2309456F01C5C3108DAD571C321899A9B7E0C009FD2EB",
        "97504C8BB0FD4D4A88D605143BF00025",
        "E2E25AA7FE6E5DD6042C632A5DFED945",
        "94C28455AEAD970555F326298557FA81",
        "B1E9E3D918952E6E5F67917F0FE77060F865AE27DCAD5742DDF90F61453B98BA",
        "8B047E32C476C0A0AF90A9B8D1C247C433E3D4C1DF1C7FC52E8CB1DC4C8FB275",
        "813D156C142E5BB8F136427EBD0A1AC4DC9B2B5963C481F5E0A58F4BF33BD185",
    ),
    (
        "123456789012345600000006",
        "B8BB61AE3E2D5CD8C699E0C578FB2C7B89B0C0CF02DBAB60864D8049C986C844",
        "BF281141609E6CAE7DF10DFA47A8D03D",
        "07B215929C5DB4262DECEE4A0336DD4F",
        "408D3B9A7D1AF109E2F689514BF79AC7",
        "8714EB94E3BFD3018EC99D0434D9C94F071AF2EEBF4332FB14F5179793AA582C",
        "A2FF6FFB37CB8042B8C9B2F94C90C83D94DD5BECCD9951CFAB0BE7BD865CA403",
        "F1FB0591AA2E45E1CE4C5D970C7396C4A87E53E5900C4A6D95C174140CC0AC9C",
    ),
    (
        "123456789012345600000007",
        "88D0ACA287B3066F5DE0C93396337D4C2DA8D92C1F720A576D62CEB4C979E01E",
        "B7C6BB187134E9D429C3E8B7CCBD8477",
        "3AC9CC5159F96E10FCC5EB64015AC76A",
        "DC2915BF421D617E7725E63A7DACB18D",
        "693C893A1E81D280302E0A47E7E634337B9A9B26E7CC6064D807E08FF911AFAC",
        "E8A57085DBE804B8C2767F9F77D54854861E99633A062C700B4E50A865153150",
        "69BC5C9AFB2C93CC30C3F7529360B34D7B64B7206E0F0940D8654378C54824F2",
    ),
    (
        "123456789012345600000008",
        "20A796D5077D51B8E7613893A4F095B134E02917DC84BD391F3661D0873FF308",
        "53C1C60A65532313141A102AD720E967",
        "6E94A9283EA9AEB7EAA77C3FF55FF2D1",
        "8950DD50C254C60E26737CA9229F0F18",
        "173A45284262A3E292D86D08FD6DE9167963214450D1D48F6103BD2EB08E61B5",
        "949A3FEF12DBD273DD25BB60E29BBE313C872A9DE3BE03A7E29626ACA0A42880",
        "0BF8789A21D068410A16C9F7FCBF65A7B4FF73203ADC0F1B4B5E5BF8050E4284",
    ),
]
# The same supplement: counters 0x1FFFE, 0x20000, 0x20001 and the last four.
AES256_LATER = [
    (
        "12345678901234560001FFFE",
        "A289508CBF1228452CD86AB77B15CB35577AC828C18BB66681E5A16D6C9CCED3",
    ),
    (
        "123456789012345600020000",
        "D62DDA94A47D7DA5D763443B4ECB15EA8DD62E0E4F915958BA459591F8312E37",
    ),
    (
        "123456789012345600020001",
        "44110A1102748D4A3AC326F53D8CAC650212590CA7126D54546DDE0F20E89CEE",
    ),
    (
        "1234567890123456FFFE2000",
        "4625EB06E4886D4AFCC9AE37ED4F4E4E1653C9E60E3F24742A87A26AA96AB7A6",
    ),
    (
        "1234567890123456FFFE4000",
        "FF20E1BB575539ACCB44E3111BE8757F83AE8549A2DD71B441A4A424F7FFD4B1",
    ),
    (
        "1234567890123456FFFE8000",
        "630535C9C53E1EC6524016930B56F6728909C45403536B419AEBCB25B7351C07",
    ),
    (
        "1234567890123456FFFF0000",
        "6D6DB7AAAE8B3EA90E57A39E4BBA71E173B21B446B30A78D64BFC6A8806C55EE",
    ),
]
AES128_PIN_BLOCKS = [
    "A912150391AB65A67E52883D81CE2D15",
    "52A00503BD34BA1383F6A7EE9FE2547F",
    "A5A27E82B43A9A866A93D7ABE89CEF93",
    "71B3D0528669498777555A8BE6698E44",
    "881A7F77A2E04E5BEA985E342FD0B628",
    "BDC1C3871AFB0B340AA5B5CEFD08695E",
    "4A8E6B8C7DBEE6CBA6DC774F0CB83396",
    "8308BB857C17F390369F761F8EB358FA",
]


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def tdes_cbc(key: bytes, data: bytes) -> bytes:
    cipher = Cipher(TripleDES(key + key[:8]), modes.CBC(bytes(8)))
    return cipher.encryptor().update(data)


# --- TDES: the host side -----------------------------------------------------------------


def test_tdes_ipek_is_the_published_one() -> None:
    assert tdes_ipek(TDES_BDK, TDES_INITIAL_KSN) == TDES_IPEK
    # The IPEK ignores the counter: any KSN of the device gives the same one.
    assert tdes_ipek(TDES_BDK, h("FFFF9876543210E00015")) == TDES_IPEK


def test_tdes_initial_ksn_lays_out_key_set_device_and_counter() -> None:
    assert tdes_initial_ksn(h("FFFF987654"), 0x3210E0 >> 5) == TDES_INITIAL_KSN
    with pytest.raises(DukptError):
        tdes_initial_ksn(h("FFFF9876"), 1)
    with pytest.raises(DukptError):
        tdes_initial_ksn(h("FFFF987654"), 1 << 19)


@pytest.mark.parametrize(
    ("ksn", "key", "pin_block", "mac_req", "mac_resp", "data"), TDES_INITIAL_SEQUENCE
)
def test_tdes_initial_sequence(
    ksn: str, key: str, pin_block: str, mac_req: str, mac_resp: str, data: str
) -> None:
    transaction_key = tdes_transaction_key(TDES_IPEK, h(ksn))
    assert transaction_key == h(key)
    txn = TdesDukptTransaction(ksn=h(ksn), key=transaction_key)
    assert txn.encrypt_pin(PIN, TDES_PAN) == h(pin_block)
    request_mac = compute_mac(
        MacAlgorithm.X919, txn.working_key(TdesKeyUsage.MAC_REQUEST), TXN_DATA
    )
    response_mac = compute_mac(
        MacAlgorithm.X919, txn.working_key(TdesKeyUsage.MAC_RESPONSE), TXN_DATA
    )
    assert request_mac[:4] == h(mac_req)
    assert response_mac[:4] == h(mac_resp)
    padded = TXN_DATA + bytes(-len(TXN_DATA) % 8)
    assert tdes_cbc(txn.working_key(TdesKeyUsage.DATA_REQUEST), padded) == h(data)


@pytest.mark.parametrize(("ksn", "key", "pin_block", "mac_req", "mac_resp"), TDES_ROLLOVER_SEQUENCE)
def test_tdes_rollover_sequence(
    ksn: str, key: str, pin_block: str, mac_req: str, mac_resp: str
) -> None:
    # Straight from the BDK, as the host does: IPEK, then the transaction key.
    transaction_key = tdes_transaction_key(tdes_ipek(TDES_BDK, h(ksn)), h(ksn))
    assert transaction_key == h(key)
    txn = TdesDukptTransaction(ksn=h(ksn), key=transaction_key)
    assert txn.encrypt_pin(PIN, TDES_PAN) == h(pin_block)
    mac_key = txn.working_key(TdesKeyUsage.MAC_REQUEST)
    assert compute_mac(MacAlgorithm.X919, mac_key, TXN_DATA)[:4] == h(mac_req)
    mac_key = txn.working_key(TdesKeyUsage.MAC_RESPONSE)
    assert compute_mac(MacAlgorithm.X919, mac_key, TXN_DATA)[:4] == h(mac_resp)


def test_tdes_variants_are_the_table_a1_masks() -> None:
    key = h("042666B49184CFA368DE9628D0397BC9")
    # X9.24-1:2009 table A-1 applied to the first transaction key of A.4.2.
    assert tdes_working_key(key, TdesKeyUsage.PIN) == h("042666B49184CF5C68DE9628D0397B36")
    assert tdes_working_key(key, TdesKeyUsage.MAC_REQUEST) == h("042666B4918430A368DE9628D03984C9")
    assert tdes_working_key(key, TdesKeyUsage.MAC_RESPONSE) == h("042666B46E84CFA368DE96282F397BC9")
    # The data key is the data variant encrypted under itself, not the bare variant.
    variant = h("042666B4917BCFA368DE9628D0C67BC9")
    assert tdes_working_key(key, TdesKeyUsage.DATA_REQUEST) != variant
    assert tdes_working_key(key, TdesKeyUsage.DATA_REQUEST) == h("448D3F076D8304036A55A3D7E0055A78")


def test_tdes_response_data_key_round_trips() -> None:
    # X9.24-1:2009 publishes no response-data vector; the key must differ from the request's
    # and still encrypt and decrypt.
    key = tdes_transaction_key(TDES_IPEK, h("FFFF9876543210E00001"))
    response = tdes_working_key(key, TdesKeyUsage.DATA_RESPONSE)
    assert response != tdes_working_key(key, TdesKeyUsage.DATA_REQUEST)
    padded = TXN_DATA + bytes(-len(TXN_DATA) % 8)
    encrypted = tdes_cbc(response, padded)
    cipher = Cipher(TripleDES(response + response[:8]), modes.CBC(bytes(8)))
    assert cipher.decryptor().update(encrypted) == padded


@pytest.mark.parametrize(
    "ksn",
    [
        "FFFF9876543210E00000",  # counter zero: the IPEK itself is never a transaction key
        "FFFF9876543210E007FF",  # eleven one-bits
        "FFFF9876543210FFFFFF",  # 21 one-bits
    ],
)
def test_tdes_host_refuses_counters_no_device_sends(ksn: str) -> None:
    with pytest.raises(DukptError):
        tdes_transaction_key(TDES_IPEK, h(ksn))


@pytest.mark.parametrize("ksn", ["", "FFFF9876543210E000", "FFFF9876543210E0000100"])
def test_tdes_ksn_must_be_ten_bytes(ksn: str) -> None:
    with pytest.raises(DukptError):
        tdes_transaction_key(TDES_IPEK, h(ksn))
    with pytest.raises(DukptError):
        tdes_ipek(TDES_BDK, h(ksn))


def test_tdes_keys_must_be_double_length() -> None:
    with pytest.raises(DukptError):
        tdes_ipek(TDES_BDK[:8], TDES_INITIAL_KSN)
    with pytest.raises(DukptError):
        tdes_transaction_key(TDES_IPEK + TDES_IPEK[:8], h("FFFF9876543210E00001"))


# --- TDES: the terminal's register -------------------------------------------------------


def test_tdes_register_walks_the_initial_sequence() -> None:
    register = TdesDukptRegister.load(TDES_IPEK, TDES_INITIAL_KSN)
    for ksn, key, pin_block, *_ in TDES_INITIAL_SEQUENCE:
        assert register.next_ksn == h(ksn)
        txn = register.next_transaction()
        assert (txn.ksn, txn.key) == (h(ksn), h(key))
        assert txn.encrypt_pin(PIN, TDES_PAN) == h(pin_block)


def test_tdes_register_rolls_over_as_published() -> None:
    # The rollover sequence starts at counter 0x0FF800; stepping there from 1 would take half
    # a million transactions, so the register is set up at the first of them directly.
    first = h(TDES_ROLLOVER_SEQUENCE[0][0])
    register = TdesDukptRegister._from_initial(TDES_IPEK, TDES_INITIAL_KSN, tdes_counter(first))
    for ksn, key, *_ in TDES_ROLLOVER_SEQUENCE:
        txn = register.next_transaction()
        assert (txn.ksn.hex().upper(), txn.key.hex().upper()) == (ksn, key)


def test_tdes_register_skips_counters_with_more_than_ten_one_bits() -> None:
    # 0x0003FE has nine one-bits; its successors up to 0x000400 have ten or eleven.
    register = TdesDukptRegister._from_initial(TDES_IPEK, TDES_INITIAL_KSN, 0x0003FE)
    counters = [register.next_transaction().counter for _ in range(4)]
    assert counters == [0x0003FE, 0x0003FF, 0x000400, 0x000401]
    assert bin(0x0003FF).count("1") == 10


def test_tdes_register_is_exhausted_after_the_last_counter() -> None:
    register = TdesDukptRegister._from_initial(TDES_IPEK, TDES_INITIAL_KSN, 0x1FF000)
    seen = []
    while not register.exhausted:
        seen.append(register.next_transaction().counter)
    assert seen[-1] == TDES_LAST_COUNTER == 0x1FF800
    assert all(bin(c).count("1") <= 10 for c in seen)
    assert register.next_ksn is None
    with pytest.raises(DukptError, match="exhausted"):
        register.next_transaction()
    # Exhaustion survives a restart.
    again = TdesDukptRegister.from_bytes(register.to_bytes())
    assert again.exhausted
    with pytest.raises(DukptError):
        again.next_transaction()


def test_tdes_register_keeps_neither_the_ipek_nor_used_keys() -> None:
    register = TdesDukptRegister.load(TDES_IPEK, TDES_INITIAL_KSN)
    used = [register.next_transaction().key for _ in range(5)]
    state = register.to_bytes()
    assert TDES_IPEK not in state
    for key in used:
        assert key not in state
    assert "6ac292" not in repr(register).lower()


def test_tdes_initial_ksn_must_have_a_zero_counter() -> None:
    with pytest.raises(DukptError):
        TdesDukptRegister.load(TDES_IPEK, h("FFFF9876543210E00001"))


def test_tdes_transaction_refuses_bad_pin_without_echoing_it() -> None:
    txn = TdesDukptRegister.load(TDES_IPEK, TDES_INITIAL_KSN).next_transaction()
    with pytest.raises(PinError) as caught:
        txn.encrypt_pin("12a45", TDES_PAN)
    assert "12a45" not in str(caught.value)
    assert txn.key.hex() not in repr(txn).lower()
    assert repr(txn.key) not in repr(txn)


# --- AES: the host side ------------------------------------------------------------------


def test_aes_initial_keys_are_the_published_ones() -> None:
    assert aes_initial_key(AES_BDK, AES_IKID) == AES128_IK
    assert aes_initial_key(AES256_BDK, AES_IKID) == AES256_IK


@pytest.mark.parametrize(("ksn", "key", "pin", "mac", "data"), AES128_FIRST_EIGHT)
def test_aes128_first_eight(ksn: str, key: str, pin: str, mac: str, data: str) -> None:
    transaction_key = aes_transaction_key(AES128_IK, h(ksn))
    assert transaction_key == h(key)
    assert aes_working_key(transaction_key, h(ksn), AesKeyUsage.PIN_ENCRYPTION) == h(pin)
    assert aes_working_key(transaction_key, h(ksn), AesKeyUsage.MAC_GENERATION) == h(mac)
    assert aes_working_key(transaction_key, h(ksn), AesKeyUsage.DATA_ENCRYPT) == h(data)


@pytest.mark.parametrize(
    ("ksn", "key", "pin128", "mac128", "data128", "pin256", "mac256", "data256"),
    AES256_FIRST_EIGHT,
)
def test_aes256_first_eight(
    ksn: str,
    key: str,
    pin128: str,
    mac128: str,
    data128: str,
    pin256: str,
    mac256: str,
    data256: str,
) -> None:
    transaction_key = aes_transaction_key(AES256_IK, h(ksn))
    assert transaction_key == h(key)
    for usage, want128, want256 in (
        (AesKeyUsage.PIN_ENCRYPTION, pin128, pin256),
        (AesKeyUsage.MAC_GENERATION, mac128, mac256),
        (AesKeyUsage.DATA_ENCRYPT, data128, data256),
    ):
        assert aes_working_key(transaction_key, h(ksn), usage, AesKeyType.AES128) == h(want128)
        assert aes_working_key(transaction_key, h(ksn), usage) == h(want256)


@pytest.mark.parametrize(("ksn", "key"), AES128_LATER)
def test_aes128_later_counters(ksn: str, key: str) -> None:
    assert aes_transaction_key(aes_initial_key(AES_BDK, h(ksn)[:8]), h(ksn)) == h(key)


@pytest.mark.parametrize(("ksn", "key"), AES256_LATER)
def test_aes256_later_counters(ksn: str, key: str) -> None:
    assert aes_transaction_key(aes_initial_key(AES256_BDK, h(ksn)[:8]), h(ksn)) == h(key)


def test_aes_usages_give_distinct_keys() -> None:
    ksn = AES_IKID + (1).to_bytes(4, "big")
    transaction_key = aes_transaction_key(AES128_IK, ksn)
    keys = {aes_working_key(transaction_key, ksn, usage) for usage in AesKeyUsage}
    assert len(keys) == len(AesKeyUsage)


def test_aes_working_key_is_never_stronger_than_its_parent() -> None:
    ksn = AES_IKID + (1).to_bytes(4, "big")
    transaction_key = aes_transaction_key(AES128_IK, ksn)
    with pytest.raises(DukptError):
        aes_working_key(transaction_key, ksn, AesKeyUsage.PIN_ENCRYPTION, AesKeyType.AES256)


@pytest.mark.parametrize(
    "ksn",
    [
        "123456789012345600000000",  # counter zero
        "12345678901234560001FFFF",  # seventeen one-bits (the supplement lists it, unusable)
        "1234567890123456FFFFFFFF",
        "1234567890123456000001",  # eleven bytes
    ],
)
def test_aes_host_refuses_counters_no_device_sends(ksn: str) -> None:
    with pytest.raises(DukptError):
        aes_transaction_key(AES128_IK, h(ksn))


def test_aes_keys_and_ids_must_have_their_lengths() -> None:
    with pytest.raises(DukptError):
        aes_initial_key(AES_BDK[:15], AES_IKID)
    with pytest.raises(DukptError):
        aes_initial_key(AES_BDK, AES_IKID[:7])
    with pytest.raises(DukptError):
        AesDukptRegister.load(AES128_IK, AES_IKID + b"\x00")


def test_aes_kcv_is_cmac_of_zeros() -> None:
    # The method (AES-CMAC of a zero block), not the legacy one (AES-ECB of a zero block),
    # which gives another value for the same key.
    from cryptography.hazmat.primitives.ciphers import algorithms
    from cryptography.hazmat.primitives.cmac import CMAC

    key = h("2B7E151628AED2A6ABF7158809CF4F3C")
    mac = CMAC(algorithms.AES(key))
    mac.update(bytes(16))
    assert aes_kcv(key) == mac.finalize()[:3]
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor().update(bytes(16))
    assert aes_kcv(key) != ecb[:3]
    assert len(aes_kcv(AES256_IK)) == 3
    with pytest.raises(DukptError):
        aes_kcv(bytes(15))


# --- AES: the terminal's register --------------------------------------------------------


@pytest.mark.parametrize(
    ("initial_key", "table"), [(AES128_IK, AES128_FIRST_EIGHT), (AES256_IK, AES256_FIRST_EIGHT)]
)
def test_aes_register_walks_the_first_eight(
    initial_key: bytes, table: list[tuple[str, ...]]
) -> None:
    register = AesDukptRegister.load(initial_key, AES_IKID)
    for ksn, key, *_ in table:
        txn = register.next_transaction()
        assert (txn.ksn, txn.key) == (h(ksn), h(key))


def test_aes_register_reaches_the_published_later_counters() -> None:
    for ksn, key in AES128_LATER:
        register = AesDukptRegister._from_initial(
            AES128_IK, AES_IKID + bytes(4), aes_counter(h(ksn))
        )
        txn = register.next_transaction()
        assert (txn.ksn, txn.key) == (h(ksn), h(key))


def test_aes_register_skips_0x1ffff_and_ends_at_0xffff0000() -> None:
    register = AesDukptRegister._from_initial(AES128_IK, AES_IKID + bytes(4), 0x1FFFE)
    assert [register.next_transaction().counter for _ in range(2)] == [0x1FFFE, 0x20000]
    register = AesDukptRegister._from_initial(AES128_IK, AES_IKID + bytes(4), 0xFFFE8000)
    seen = []
    while not register.exhausted:
        seen.append(register.next_transaction().counter)
    assert seen == [0xFFFE8000, AES_LAST_COUNTER]
    with pytest.raises(DukptError):
        register.next_transaction()


def test_aes_register_encrypts_format4_under_the_pin_key() -> None:
    from psec.pinblock import decipher_pinblock_iso_4

    register = AesDukptRegister.load(AES128_IK, AES_IKID)
    txn = register.next_transaction()
    block = txn.encrypt_pin(PIN, "4111111111111111")
    assert len(block) == 16
    pin_key = h(AES128_FIRST_EIGHT[0][2])
    assert decipher_pinblock_iso_4(pin_key, block, "4111111111111111") == PIN


# --- Both registers: state, counters, no reuse -------------------------------------------


@pytest.mark.parametrize(
    ("load", "cls"),
    [
        (lambda: TdesDukptRegister.load(TDES_IPEK, TDES_INITIAL_KSN), TdesDukptRegister),
        (lambda: AesDukptRegister.load(AES256_IK, AES_IKID), AesDukptRegister),
    ],
)
def test_state_round_trips_mid_sequence(load: object, cls: type) -> None:
    register = load()  # type: ignore[operator]
    for _ in range(7):
        register.next_transaction()
    copy = cls.from_bytes(register.to_bytes())
    assert copy.next_ksn == register.next_ksn
    for _ in range(20):
        a, b = register.next_transaction(), copy.next_transaction()
        assert (a.ksn, a.key) == (b.ksn, b.key)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s[:-1],  # a key cut short
        lambda s: s + b"\x00",  # trailing bytes
        lambda s: b"\x02" + s[1:],  # unknown version
        lambda s: s[:1] + b"\x02" + s[2:],  # the AES variant's tag
        lambda s: s[:2] + b"\x18" + s[3:],  # another key length
        lambda s: s[:3] + b"\x05" + s[4:],  # unknown flags
        lambda s: s[:11] + b"\xe0\x07\xff" + s[14:],  # a counter with eleven one-bits
        lambda s: b"",
    ],
)
def test_malformed_state_is_refused(mangle: object) -> None:
    register = TdesDukptRegister.load(TDES_IPEK, TDES_INITIAL_KSN)
    register.next_transaction()
    with pytest.raises(DukptError):
        TdesDukptRegister.from_bytes(mangle(register.to_bytes()))  # type: ignore[operator]


def test_one_variant_state_is_not_the_other() -> None:
    tdes_state = TdesDukptRegister.load(TDES_IPEK, TDES_INITIAL_KSN).to_bytes()
    aes_state = AesDukptRegister.load(AES128_IK, AES_IKID).to_bytes()
    with pytest.raises(DukptError):
        AesDukptRegister.from_bytes(tdes_state)
    with pytest.raises(DukptError):
        TdesDukptRegister.from_bytes(aes_state)


@settings(max_examples=60, deadline=None)
@given(start=st.integers(min_value=1, max_value=(1 << 21) - 1), steps=st.integers(1, 40))
def test_tdes_counters_rise_and_keys_match_the_host(start: int, steps: int) -> None:
    rules = _Counter(bits=21, max_ones=10)
    if not rules.valid(start):
        start = rules.after(start) or TDES_LAST_COUNTER
    register = TdesDukptRegister._from_initial(TDES_IPEK, TDES_INITIAL_KSN, start)
    previous = 0
    for _ in range(steps):
        if register.exhausted:
            break
        state = register.to_bytes()
        txn = register.next_transaction()
        assert txn.counter > previous and bin(txn.counter).count("1") <= 10
        previous = txn.counter
        assert txn.key == tdes_transaction_key(TDES_IPEK, txn.ksn)
        # A register restored from before this transaction gives the same one; from after,
        # the next one: no counter twice, none skipped that was valid.
        assert TdesDukptRegister.from_bytes(state).next_transaction().ksn == txn.ksn
        assert TdesDukptRegister.from_bytes(register.to_bytes()).next_ksn != txn.ksn
        assert txn.key not in register.to_bytes()


@settings(max_examples=60, deadline=None)
@given(start=st.integers(min_value=1, max_value=(1 << 32) - 1), steps=st.integers(1, 20))
def test_aes_counters_rise_and_keys_match_the_host(start: int, steps: int) -> None:
    rules = _Counter(bits=32, max_ones=16)
    if not rules.valid(start):
        start = rules.after(start) or AES_LAST_COUNTER
    register = AesDukptRegister._from_initial(AES128_IK, AES_IKID + bytes(4), start)
    previous = 0
    for _ in range(steps):
        if register.exhausted:
            break
        txn = register.next_transaction()
        assert txn.counter > previous and bin(txn.counter).count("1") <= 16
        previous = txn.counter
        assert txn.key == aes_transaction_key(AES128_IK, txn.ksn)
        assert txn.key not in register.to_bytes()


@settings(max_examples=200, deadline=None)
@given(counter=st.integers(min_value=0, max_value=(1 << 21) - 1))
def test_next_counter_is_the_least_valid_one_above(counter: int) -> None:
    rules = _Counter(bits=21, max_ones=10)
    following = rules.after(counter)
    # Brute force over a bounded window: nothing valid is skipped.
    upper = following if following is not None else 1 << 21
    window = range(counter + 1, min(upper, counter + 5000))
    assert not any(rules.valid(c) for c in window)
    if following is not None:
        assert rules.valid(following)

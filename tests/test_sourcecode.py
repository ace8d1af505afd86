"""Kinds, decoding and line counts of legacy source files, on small realistic programs.

Every expected count was worked out by hand, line by line, in the comment above it.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migrationpilot_cli.sourcecode import (
    SOURCE_FILE_KINDS,
    BinaryFile,
    LineCounts,
    UndecodableFile,
    classify,
    count_lines,
    decode,
    fortran_fixed_form,
)

# --- classify -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("src/LOANINT.cbl", "cobol"),
        ("src/loanint.cob", "cobol"),
        ("src/loanint.cobol", "cobol"),
        ("copy/LOANREC.CPY", "cobol-copybook"),
        ("fortran/interest.f", "fortran"),
        ("fortran/INTEREST.F", "fortran"),
        ("fortran/interest.for", "fortran"),
        ("fortran/interest.ftn", "fortran"),
        ("fortran/interest.f77", "fortran"),
        ("fortran/interest.f90", "fortran"),
        ("fortran/interest.f95", "fortran"),
        ("fortran/interest.F03", "fortran"),
        ("forms/frmLoan.frm", "vb6"),
        ("controls/RateBox.ctl", "vb6"),
        ("Loans.vbp", "vb6"),
        ("excel/modLoan.vba", "vba"),
        ("com/acme/Interest.java", "java"),
        ("jcl/LOANJOB.JCL", "jcl"),
    ],
)
def test_classify_by_extension(path: str, kind: str) -> None:
    assert classify(path, "cobol") == kind
    assert kind in SOURCE_FILE_KINDS


@pytest.mark.parametrize("extension", [".bas", ".cls", ".BAS", ".Cls"])
def test_shared_vb_extensions_follow_the_project_language(extension: str) -> None:
    assert classify(f"modules/modLoan{extension}", "vba") == "vba"
    for language in ("vb6", "cobol", "fortran", "java-legacy"):
        assert classify(f"modules/modLoan{extension}", language) == "vb6"


@pytest.mark.parametrize(
    "path", ["README.md", "notes.txt", "Makefile", "build/LOANINT", "old.cbl/README", "a.c"]
)
def test_unknown_extensions_are_skipped(path: str) -> None:
    assert classify(path, "cobol") is None


def test_classify_refuses_an_unknown_source_language() -> None:
    with pytest.raises(ValueError, match="VBA"):
        classify("modLoan.bas", "VBA")


@pytest.mark.parametrize(
    ("path", "fixed"),
    [
        ("a.f", True),
        ("a.FOR", True),
        ("a.ftn", True),
        ("a.f77", True),
        ("a.f90", False),
        ("a.F95", False),
        ("a.f03", False),
    ],
)
def test_fortran_form_follows_the_extension(path: str, fixed: bool) -> None:
    assert fortran_fixed_form(path) is fixed


# --- decode -------------------------------------------------------------------------------


def test_utf8_bom_is_stripped_and_reported_as_utf8() -> None:
    data = b"\xef\xbb\xbf       IDENTIFICATION DIVISION.\n"
    assert decode(data) == ("       IDENTIFICATION DIVISION.\n", "utf-8")
    assert decode(data, "UTF-8") == ("       IDENTIFICATION DIVISION.\n", "utf-8")


def test_line_endings_are_normalized() -> None:
    data = b"Option Explicit\r\nDim x As Long\rx = 1\n\r\n"
    assert decode(data) == ("Option Explicit\nDim x As Long\nx = 1\n\n", "utf-8")
    assert decode(data, "cp1252")[0] == "Option Explicit\nDim x As Long\nx = 1\n\n"


def test_cp1252_is_the_fallback_for_pc_exports() -> None:
    data = "' Intérêt annuel en €\r\n".encode("cp1252")
    assert b"\xe9" in data and b"\x80" in data  # é and € are not valid UTF-8 on their own
    assert decode(data) == ("' Intérêt annuel en €\n", "cp1252")


def test_latin1_is_the_last_resort_and_never_fails() -> None:
    data = b"caf\xe9 \x81"  # 0x81 is undefined in cp1252
    assert decode(data) == ("café \x81", "iso8859-1")
    assert decode(bytes(b for b in range(1, 256)))[1] == "iso8859-1"


def test_ebcdic_is_decoded_when_forced() -> None:
    data = "       DISPLAY 'TEXT'.\n".encode("cp037")
    assert data.startswith(b"\x40\x40")  # EBCDIC spaces, not ASCII ones
    assert decode(data, encoding="cp037") == ("       DISPLAY 'TEXT'.\n", "cp037")
    assert decode("TEXT".encode("cp037"), encoding="IBM037") == ("TEXT", "cp037")


def test_ebcdic_new_line_ends_a_line() -> None:
    # z/OS Unix files end lines with NL (0x15), not LF (0x25).
    data = "A".encode("cp037") + b"\x15" + "B".encode("cp037") + b"\x15"
    assert decode(data, "cp037") == ("A\nB\n", "cp037")


def test_a_forced_encoding_that_cannot_decode_names_the_offset() -> None:
    with pytest.raises(UndecodableFile, match=r"0xc3 at offset 3"):  # é cut short
        decode(b"caf\xc3\xe9", "utf-8")
    with pytest.raises(UndecodableFile, match=r"0xff at offset 2"):
        decode(b"ok\xff", "ascii")
    # Offsets count from the first byte of the file, BOM included.
    with pytest.raises(UndecodableFile, match=r"offset 5"):
        decode(b"\xef\xbb\xbfok\xff", "utf-8")


def test_an_unknown_encoding_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="no-such-codec"):
        decode(b"x", "no-such-codec")
    with pytest.raises(ValueError, match="rot13"):
        decode(b"x", "rot13")


@pytest.mark.parametrize("encoding", [None, "utf-8", "cp1252", "latin-1", "cp037"])
def test_nul_bytes_make_a_binary_file(encoding: str | None) -> None:
    with pytest.raises(BinaryFile, match="offset 3"):
        decode(b"MZ\x90\x00\x03", encoding)


def test_utf16_may_hold_nul_bytes_when_forced() -> None:
    data = "Option Explicit\r\n".encode("utf-16")
    assert decode(data, "utf-16") == ("Option Explicit\n", "utf-16")
    with pytest.raises(BinaryFile):
        decode(data)


@given(st.text())
def test_any_utf8_text_round_trips(text: str) -> None:
    text = text.replace("\x00", "")
    decoded, encoding = decode(text.encode("utf-8"))
    assert encoding == "utf-8"
    # A leading U+FEFF encodes to the very bytes of a BOM, so it is read as one.
    expected = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    assert decoded == expected


# --- count_lines: the physical lines ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "total"),
    [("", 0), ("\n", 1), ("a", 1), ("a\n", 1), ("a\nb", 2), ("a\n\n", 2), ("a\r\nb\r\n", 2)],
)
def test_total_counts_physical_lines(text: str, total: int) -> None:
    assert count_lines(text, "jcl").total == total


def test_a_form_feed_does_not_split_a_line() -> None:
    assert count_lines("\f\n       STOP RUN.\n", "cobol") == LineCounts(
        total=2, code=1, comment=0, blank=1
    )


def test_unknown_kind_and_fortran_without_a_form_are_refused() -> None:
    with pytest.raises(ValueError, match="pascal"):
        count_lines("begin end.", "pascal")
    with pytest.raises(ValueError, match="fixed_form"):
        count_lines("      END\n", "fortran")


# --- COBOL --------------------------------------------------------------------------------

# Fixed format: sequence numbers in 1-6, identification in 73-80.
COBOL_FIXED = """\
000100 IDENTIFICATION DIVISION.                                         LOANINT1
000200 PROGRAM-ID. LOANINT.                                             LOANINT1
000300******************************************************************LOANINT1
000400* COMPUTES THE MONTHLY INTEREST ON A LOAN BALANCE.                LOANINT1
000500******************************************************************LOANINT1
000600 ENVIRONMENT DIVISION.                                            LOANINT1
000700                                                                  LOANINT1
000800 DATA DIVISION.                                                   LOANINT1
000900 WORKING-STORAGE SECTION.                                         LOANINT1
001000 01  WS-PRINCIPAL          PIC 9(7)V99 VALUE 250000.00.           LOANINT1
001100 01  WS-ANNUAL-RATE        PIC 9V9(4)  VALUE 0.0475.              LOANINT1
001200 01  WS-MONTHLY-INTEREST   PIC 9(7)V99.                           LOANINT1
001300 01  WS-HEADING PIC X(60) VALUE 'MONTHLY INTEREST FOR THE LOAN    LOANINT1
001400-    ' BALANCE'.                                                  LOANINT1
001500     *> THE RATE IS A FRACTION, NOT A PERCENTAGE                  LOANINT1
001600/                                                                 LOANINT1
001700 PROCEDURE DIVISION.                                              LOANINT1
001800 MAIN-PARA.                                                       LOANINT1
001900     COMPUTE WS-MONTHLY-INTEREST ROUNDED =                        LOANINT1
002000         WS-PRINCIPAL * WS-ANNUAL-RATE / 12.                      LOANINT1
002100D    DISPLAY 'RATE: ' WS-ANNUAL-RATE.                             LOANINT1
002200     DISPLAY WS-HEADING WS-MONTHLY-INTEREST. *> TO SYSOUT         LOANINT1
002300     STOP RUN.                                                    LOANINT1
"""
# 23 lines.
# comment 5: 000300 000500 (* banners), 000400 (*), 001500 (*> alone), 001600 (/ page eject)
# blank   1: 000700 (sequence number and identification only)
# code   17: the rest, among them 001400 (- continuation), 002100 (D debugging line)
#            and 002200 (code with a trailing *> comment)


def test_the_fixed_cobol_sample_really_is_in_columns() -> None:
    for line in COBOL_FIXED.splitlines():
        assert len(line) == 80 and line[:6].isdigit() and line[72:] == "LOANINT1"


def test_fixed_format_cobol() -> None:
    assert count_lines(COBOL_FIXED, "cobol") == LineCounts(total=23, code=17, comment=5, blank=1)


def test_fixed_format_ignores_sequence_and_identification_areas() -> None:
    # Comment marks in columns 1-6 or 73+ are not indicators; text there is not code.
    text = "*AB123 MOVE 1 TO X.\n" + "123456" + " " * 66 + "* NOTE *\n" + "000100*\n"
    assert count_lines(text, "cobol") == LineCounts(total=3, code=1, comment=1, blank=1)


def test_lower_case_debugging_indicator_is_code() -> None:
    assert count_lines("      d    DISPLAY X.\n", "cobol") == LineCounts(
        total=1, code=1, comment=0, blank=0
    )


def _fixed_format_line_by_line(text: str) -> LineCounts:
    """The fixed-format rules applied one line at a time, as the docstring states them: the
    reference for the counter, which works on whole lists of lines for speed."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines[-1] == "":
        lines.pop()
    code = comment = blank = 0
    for line in lines:
        area = line[6:72]
        if not area or area.isspace():
            blank += 1
        elif area[0] in "*/" or area[1:].lstrip().startswith("*>"):
            comment += 1
        else:
            code += 1
    return LineCounts(total=len(lines), code=code, comment=comment, blank=blank)


# A sequence area of 0 to 7 characters (so the mark after it lands in column 7 or around it),
# a mark, then pieces of area A/B: blanks of several kinds, comment marks, code, long runs
# that cross column 72.
_FIXED_FORMAT_LINE = st.builds(
    lambda sequence, mark, rest: sequence + mark + "".join(rest),
    st.text(alphabet=st.sampled_from(list(" 0123456789*/>")), max_size=7),
    st.sampled_from([" ", "*", "/", "-", "D", "d", ">", "\t"]),
    st.lists(
        st.sampled_from([" ", "\t", "\f", "\u00a0", "\u2003", "*", "/", "*>", ">", "MOVE 1 TO X."])
        | st.text(max_size=70),
        max_size=8,
    ),
)


@given(lines=st.lists(_FIXED_FORMAT_LINE, max_size=12))
def test_fixed_format_counts_follow_the_rules_line_by_line(lines: list[str]) -> None:
    text = "\n".join(line.replace("\r", "").replace("\n", "") for line in lines)
    if ">>" in text or "$" in text:  # a format directive: covered by its own tests below
        return
    assert count_lines(text, "cobol") == _fixed_format_line_by_line(text)


COBOL_FREE = """\
>>SOURCE FORMAT IS FREE
*> Monthly payment on an amortized loan.
IDENTIFICATION DIVISION.
PROGRAM-ID. loanpay.

DATA DIVISION.
WORKING-STORAGE SECTION.
01 principal PIC 9(7)V99 VALUE 180000.
01 rate      PIC 9V9(6)  VALUE 0.003958. *> 4.75 % a year
01 payment   PIC 9(7)V99.
    *> an indented comment
PROCEDURE DIVISION.
    COMPUTE payment ROUNDED = principal * rate / (1 - (1 + rate) ** -360)
    DISPLAY "Payment: " payment
    STOP RUN.
"""
# 15 lines: the directive is code; comment 2 (the two *> lines); blank 1; code 12.
# Read as fixed format it would be nonsense: "STOP RUN." sits in columns 5-13.


def test_free_format_cobol() -> None:
    assert count_lines(COBOL_FREE, "cobol") == LineCounts(total=15, code=12, comment=2, blank=1)


def test_source_directives_switch_between_formats() -> None:
    text = (
        "      * STILL FIXED HERE\n"  # comment (fixed: * in column 7)
        "       >>source   free\n"  # code, switches to free
        "* not a comment in free format\n"  # code
        "   *> comment\n"  # comment
        ">>SOURCE FORMAT FIXED\n"  # code, back to fixed
        "000100*> FIXED AGAIN\n"  # comment: *> in column 7
        '      $SET SOURCEFORMAT"FREE"\n'  # code: the Micro Focus spelling
        "*> free again\n"  # comment
    )
    assert count_lines(text, "cobol") == LineCounts(total=8, code=4, comment=4, blank=0)


def test_a_directive_inside_a_comment_changes_nothing() -> None:
    text = "      * >>SOURCE FORMAT IS FREE\nSTOP RUN.\n"
    # Still fixed: "STOP RUN." leaves only "UN." in columns 7-72, and "U" is no comment mark.
    assert count_lines(text, "cobol") == LineCounts(total=2, code=1, comment=1, blank=0)
    text = "      * >>SOURCE FORMAT IS FREE\n*> x\n"
    # Still fixed: "*> x" is blank in columns 7-72.
    assert count_lines(text, "cobol") == LineCounts(total=2, code=0, comment=1, blank=1)


COBOL_COPYBOOK = """\
      *****************************************************************
      * LOANREC.CPY - LOAN MASTER RECORD LAYOUT
      *****************************************************************
       01  LOAN-RECORD.
           05  LOAN-ID             PIC X(10).
           05  LOAN-PRINCIPAL      PIC S9(9)V99 COMP-3.

           05  LOAN-RATE           PIC S9V9(5)  COMP-3.
           05  LOAN-STATUS         PIC X.
               88  LOAN-ACTIVE     VALUE 'A'.
               88  LOAN-CLOSED     VALUE 'C'.
"""
# 11 lines: comment 3 (the banner); blank 1; code 7.


def test_copybook_follows_the_cobol_rules() -> None:
    expected = LineCounts(total=11, code=7, comment=3, blank=1)
    assert count_lines(COBOL_COPYBOOK, "cobol-copybook") == expected
    assert count_lines(COBOL_COPYBOOK, "cobol") == expected


# --- Fortran ------------------------------------------------------------------------------

FORTRAN_FIXED = """\
C     COMPOUND INTEREST TABLE
C     -----------------------
      PROGRAM CMPINT
      REAL P, R, A
      INTEGER N
* PRINCIPAL AND ANNUAL RATE
      P = 1000.0
      R = 0.05

      DO 10 N = 1, 10
         A = P * (1.0 + R) ** N
         WRITE (6, 100) N,
     &                  A
   10 CONTINUE
  100 FORMAT (1X, 'YEAR ', I3, ' AMOUNT ', F10.2)
c     lower-case c in column 1
!     bang in column 1
         ! indented bang
      STOP
      END
"""
# 20 lines.
# comment 6: the two C lines, the * line, the c line, both ! lines
# blank   1
# code   13: among them the & continuation (column 6) and the labelled lines 10 and 100


def test_fixed_form_fortran() -> None:
    assert count_lines(FORTRAN_FIXED, "fortran", fixed_form=True) == LineCounts(
        total=20, code=13, comment=6, blank=1
    )


def test_fixed_form_fortran_column_6_and_sequence_field() -> None:
    text = (
        "      X = 1 +\n"  # code
        "     !    2\n"  # code: ! in column 6 continues the statement
        + " " * 72
        + "SEQ00010\n"  # blank: columns 73+ are ignored
    )
    assert count_lines(text, "fortran", fixed_form=True) == LineCounts(
        total=3, code=2, comment=0, blank=1
    )


FORTRAN_FREE = """\
! Loan amortization schedule
program amortize
  implicit none
  real :: balance = 10000.0, rate = 0.005  ! monthly rate
  integer :: month

  do month = 1, 12
    ! interest accrues before the payment
    balance = balance * (1.0 + rate) - payment(balance)
    print '(I3, F12.2)', month, &
          balance
  end do
contains
  real function payment(owed)
    real, intent(in) :: owed
    payment = min(owed, 200.0)
  end function payment
end program amortize
"""
# 18 lines: comment 2 (the ! lines); blank 1; code 15, "contains" in column 1 included.


def test_free_form_fortran() -> None:
    assert count_lines(FORTRAN_FREE, "fortran", fixed_form=False) == LineCounts(
        total=18, code=15, comment=2, blank=1
    )
    # The form matters: read as fixed form, "contains" is a comment (c in column 1).
    assert count_lines(FORTRAN_FREE, "fortran", fixed_form=True) == LineCounts(
        total=18, code=14, comment=3, blank=1
    )


# --- VB6 and VBA --------------------------------------------------------------------------

VB6_MODULE = """\
Attribute VB_Name = "modInterest"
' Interest calculations for the loan screens
Option Explicit

Rem Rates are stored as percentages, e.g. 4.75
Public Function MonthlyInterest(ByVal Principal As Currency, _
                                ByVal RatePct As Double) As Currency
    ' divide by 100 for the fraction and by 12 for the month
    MonthlyInterest = Principal * RatePct / 1200   ' Currency rounds
End Function

    REM an indented upper-case Rem is a comment too
Public Function Remaining(ByVal Balance As Currency) As Currency
    Remaining = Balance   'starts with "Rem" but is code
End Function
' a comment continued _
  onto a second line
Rem
"""
# 18 lines.
# comment 7: ' line 2, Rem line 5, ' line 8, REM line 12, the continued comment (2 lines),
#            the bare Rem
# blank   2
# code    9: Attribute, Option, the two-line Function header, the two assignments (one with a
#            trailing comment), the two End Function, the Remaining header


def test_vb6_module() -> None:
    assert classify("Modules/modInterest.bas", "vb6") == "vb6"
    assert count_lines(VB6_MODULE, "vb6") == LineCounts(total=18, code=9, comment=7, blank=2)


VBA_MODULE = """\
Attribute VB_Name = "modLoan"
Option Explicit
'Reads the loan sheet and writes the schedule
Sub BuildSchedule()
    Dim ws As Worksheet
    Set ws = ThisWorkbook.Worksheets("Loans")

    Rem column B holds the principal
    ws.Range("C2").Value = ws.Range("B2").Value * 0.0475 / 12
End Sub
"""
# 10 lines: comment 2 (the ' line, the Rem line); blank 1; code 7.


def test_vba_module() -> None:
    kind = classify("Modules/modLoan.bas", "vba")
    assert kind == "vba"
    assert count_lines(VBA_MODULE, kind) == LineCounts(total=10, code=7, comment=2, blank=1)


# --- Java ---------------------------------------------------------------------------------

JAVA_CLASS = """\
package com.acme.loans;

import java.math.BigDecimal;

/**
 * Interest on a loan balance.
 *
 * Ported from LOANINT.cbl.
 */
public class InterestCalculator {
    // annual rate as a fraction
    private static final BigDecimal RATE = new BigDecimal("0.0475");
    private static final String OPEN = "/*"; // not the start of a comment
    private static final char QUOTE = '"', SLASH = '/';

    /* a one-line block comment */
    public BigDecimal monthly(BigDecimal principal) { /* trailing */
        return principal.multiply(RATE) /* inline */ .divide(TWELVE);
    }
    /* a block that ends
       before code */ private static final BigDecimal TWELVE = BigDecimal.valueOf(12);
}
"""
# 22 lines.
# blank   3: lines 2, 4, 15
# comment 8: the javadoc (5 lines, " *" alone included), "// annual rate", the one-line
#            block, "/* a block that ends"
# code   11: package, import, class, the four fields ("/*" is in a string, '"' is a char),
#            monthly(...) { /* trailing */, the return with an inline comment, "}",
#            "before code */ private ...", the closing "}"


def test_java_comments_and_strings() -> None:
    assert count_lines(JAVA_CLASS, "java") == LineCounts(total=22, code=11, comment=8, blank=3)


def test_java_blank_lines_inside_a_block_comment_are_blank() -> None:
    text = "/*\n\n   still comment\n*/ \nint x = 1; /* a\n  b */\n"
    assert count_lines(text, "java") == LineCounts(total=6, code=1, comment=4, blank=1)


def test_java_escaped_quotes_stay_inside_the_string() -> None:
    text = 'String s = "say \\"/*\\" twice";\nint y = 2;\n'
    assert count_lines(text, "java") == LineCounts(total=2, code=2, comment=0, blank=0)


# --- JCL ----------------------------------------------------------------------------------

JCL_JOB = """\
//LOANJOB  JOB (ACCT),'MONTHLY INTEREST',CLASS=A,MSGCLASS=X
//*
//* RUN THE LOAN INTEREST PROGRAM AGAINST THE MASTER FILE
//*
//STEP01   EXEC PGM=LOANINT
//STEPLIB  DD DSN=PROD.LOADLIB,DISP=SHR
//LOANMAST DD DSN=PROD.LOAN.MASTER,DISP=SHR
//SYSOUT   DD SYSOUT=*
//SYSIN    DD *
  RATE=0.0475
/*

//
"""
# 13 lines: comment 3 (the //* lines); blank 1; code 9, among them the in-stream data, the
# /* delimiter and the // end of job.


def test_jcl_job() -> None:
    assert count_lines(JCL_JOB, "jcl") == LineCounts(total=13, code=9, comment=3, blank=1)


# --- any text -----------------------------------------------------------------------------

# Characters that mean something to one format or another, so that the examples hit the rules
# and not only random letters.
_SIGNIFICANT = st.sampled_from(list(" \t\n\r\f*/-'\"!>$\\CcDdRrEeMm_SOURCEFREFIX0123456789"))


@given(
    text=st.text(alphabet=_SIGNIFICANT | st.characters(), max_size=400),
    kind=st.sampled_from(SOURCE_FILE_KINDS),
    fixed_form=st.booleans(),
)
def test_every_line_is_counted_exactly_once(text: str, kind: str, fixed_form: bool) -> None:
    counts = count_lines(text, kind, fixed_form=fixed_form)
    assert counts.code + counts.comment + counts.blank == counts.total
    assert min(counts.code, counts.comment, counts.blank) >= 0
    normalized = text.replace("\r\n", "\n").replace("\r", "\n")
    unterminated_last_line = normalized != "" and not normalized.endswith("\n")
    assert counts.total == normalized.count("\n") + unterminated_last_line

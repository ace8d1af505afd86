000100 IDENTIFICATION DIVISION.                                         LOANCALC
000200 PROGRAM-ID. LOANCALC.                                            LOANCALC
000300*================================================================*LOANCALC
000400* MONTHLY LOAN ACCOUNTING: INTEREST, PAYMENT, LATE FEES, PAYOFF  *LOANCALC
000500* WRITTEN 1987, Y2K REMEDIATION 1998, RATE TABLE CHANGE 2009     *LOANCALC
000600*================================================================*LOANCALC
000700 ENVIRONMENT DIVISION.                                            LOANCALC
000800 DATA DIVISION.                                                   LOANCALC
000900 WORKING-STORAGE SECTION.                                         LOANCALC
001000     COPY LOANREC.                                                LOANCALC
001100 01  WS-MONTHLY-RATE          PIC 9V9(08)     COMP-3.             LOANCALC
001200 01  WS-INTEREST              PIC 9(09)V99    COMP-3.             LOANCALC
001300 01  WS-PAYMENT               PIC 9(09)V99    COMP-3.             LOANCALC
001400 01  WS-LATE-FEE              PIC 9(07)V99    COMP-3.             LOANCALC
001500 01  WS-PAYOFF                PIC 9(09)V99    COMP-3.             LOANCALC
001600 01  WS-FACTOR                PIC 9(05)V9(08) COMP-3.             LOANCALC
001700 01  WS-REMAINING             PIC 9(03).                          LOANCALC
001800 01  WS-PENALTY-RATE          PIC 9V9(04)     VALUE 0.0200.       LOANCALC
001900 01  WS-MAX-LATE-FEE          PIC 9(05)V99    VALUE 150.00.       LOANCALC
002000 01  WS-MIN-LATE-FEE          PIC 9(05)V99    VALUE 15.00.        LOANCALC
002100 01  WS-GRACE-DAYS            PIC 9(02)       VALUE 10.           LOANCALC
002200                                                                  LOANCALC
002300 PROCEDURE DIVISION.                                              LOANCALC
002400 0000-MAIN.                                                       LOANCALC
002500     PERFORM 1000-MONTHLY-RATE                                    LOANCALC
002600     PERFORM 2000-MONTHLY-INTEREST                                LOANCALC
002700     PERFORM 3000-PAYMENT                                         LOANCALC
002800     PERFORM 4000-LATE-FEE                                        LOANCALC
002900     PERFORM 5000-PAYOFF                                          LOANCALC
003000     PERFORM 6000-STATUS                                          LOANCALC
003100     GOBACK.                                                      LOANCALC
003200                                                                  LOANCALC
003300*    THE ANNUAL RATE IS NOMINAL: DIVIDE BY TWELVE, NO COMPOUNDING LOANCALC
003400 1000-MONTHLY-RATE.                                               LOANCALC
003500     COMPUTE WS-MONTHLY-RATE ROUNDED =                            LOANCALC
003600         LOAN-ANNUAL-RATE / 100 / 12.                             LOANCALC
003700     IF LOAN-TYPE-MORTGAGE AND LOAN-ANNUAL-RATE < 2.5             LOANCALC
003800*        REGULATORY FLOOR FOR MORTGAGES SINCE 2009                LOANCALC
003900         COMPUTE WS-MONTHLY-RATE ROUNDED = 2.5 / 100 / 12         LOANCALC
004000     END-IF.                                                      LOANCALC
004100                                                                  LOANCALC
004200*    INTEREST ACCRUES ON THE OUTSTANDING BALANCE, ROUNDED HALF-UP LOANCALC
004300 2000-MONTHLY-INTEREST.                                           LOANCALC
004400     COMPUTE WS-INTEREST ROUNDED =                                LOANCALC
004500         LOAN-BALANCE * WS-MONTHLY-RATE.                          LOANCALC
004600     IF LOAN-DELINQUENT                                           LOANCALC
004700*        DELINQUENT LOANS ACCRUE THE PENALTY RATE ON TOP          LOANCALC
004800         COMPUTE WS-INTEREST ROUNDED = WS-INTEREST +              LOANCALC
004900             LOAN-BALANCE * WS-PENALTY-RATE / 12                  LOANCALC
005000     END-IF.                                                      LOANCALC
005100                                                                  LOANCALC
005200*    LEVEL PAYMENT (ANNUITY) OVER THE REMAINING TERM              LOANCALC
005300 3000-PAYMENT.                                                    LOANCALC
005400     COMPUTE WS-REMAINING =                                       LOANCALC
005500         LOAN-TERM-MONTHS - LOAN-PAYMENTS-MADE.                   LOANCALC
005600     IF WS-REMAINING = 0                                          LOANCALC
005700         MOVE LOAN-BALANCE TO WS-PAYMENT                          LOANCALC
005800     ELSE                                                         LOANCALC
005900         COMPUTE WS-FACTOR =                                      LOANCALC
006000             (1 + WS-MONTHLY-RATE) ** WS-REMAINING                LOANCALC
006100         COMPUTE WS-PAYMENT ROUNDED =                             LOANCALC
006200             LOAN-BALANCE * WS-MONTHLY-RATE * WS-FACTOR           LOANCALC
006300             / (WS-FACTOR - 1)                                    LOANCALC
006400     END-IF.                                                      LOANCALC
006500                                                                  LOANCALC
006600*    LATE FEE: 5% OF THE PAYMENT AFTER THE GRACE PERIOD, CAPPED   LOANCALC
006700 4000-LATE-FEE.                                                   LOANCALC
006800     MOVE 0 TO WS-LATE-FEE                                        LOANCALC
006900     IF LOAN-DAYS-LATE > WS-GRACE-DAYS                            LOANCALC
007000         COMPUTE WS-LATE-FEE ROUNDED = WS-PAYMENT * 0.05          LOANCALC
007100         IF WS-LATE-FEE < WS-MIN-LATE-FEE                         LOANCALC
007200             MOVE WS-MIN-LATE-FEE TO WS-LATE-FEE                  LOANCALC
007300         END-IF                                                   LOANCALC
007400         IF WS-LATE-FEE > WS-MAX-LATE-FEE                         LOANCALC
007500             MOVE WS-MAX-LATE-FEE TO WS-LATE-FEE                  LOANCALC
007600         END-IF                                                   LOANCALC
007700     END-IF.                                                      LOANCALC
007800                                                                  LOANCALC
007900*    PAYOFF QUOTE: BALANCE PLUS ACCRUED INTEREST PLUS FEES        LOANCALC
008000 5000-PAYOFF.                                                     LOANCALC
008100     COMPUTE WS-PAYOFF ROUNDED =                                  LOANCALC
008200         LOAN-BALANCE + WS-INTEREST + WS-LATE-FEE.                LOANCALC
008300     IF LOAN-TYPE-MORTGAGE AND LOAN-PAYMENTS-MADE < 36            LOANCALC
008400*        EARLY PAYOFF OF A MORTGAGE: 1% PREPAYMENT PENALTY        LOANCALC
008500         COMPUTE WS-PAYOFF ROUNDED = WS-PAYOFF +                  LOANCALC
008600             LOAN-BALANCE * 0.01                                  LOANCALC
008700     END-IF.                                                      LOANCALC
008800                                                                  LOANCALC
008900*    STATUS: 90 DAYS LATE IS DELINQUENT; A ZERO BALANCE CLOSES    LOANCALC
009000 6000-STATUS.                                                     LOANCALC
009100     EVALUATE TRUE                                                LOANCALC
009200         WHEN LOAN-BALANCE = 0                                    LOANCALC
009300             SET LOAN-CLOSED TO TRUE                              LOANCALC
009400         WHEN LOAN-DAYS-LATE >= 90                                LOANCALC
009500             SET LOAN-DELINQUENT TO TRUE                          LOANCALC
009600         WHEN OTHER                                               LOANCALC
009700             SET LOAN-ACTIVE TO TRUE                              LOANCALC
009800     END-EVALUATE.                                                LOANCALC

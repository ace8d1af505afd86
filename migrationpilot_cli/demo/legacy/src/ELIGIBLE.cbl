000100 IDENTIFICATION DIVISION.                                         ELIGIBLE
000200 PROGRAM-ID. ELIGIBLE.                                            ELIGIBLE
000300*================================================================*ELIGIBLE
000400* LOAN ELIGIBILITY: AGE, RESIDENCE, SCORE, DEBT RATIO, AMOUNTS   *ELIGIBLE
000500* RETURNS WS-DECISION: A = APPROVE, R = REFER, D = DECLINE       *ELIGIBLE
000600*================================================================*ELIGIBLE
000700 DATA DIVISION.                                                   ELIGIBLE
000800 WORKING-STORAGE SECTION.                                         ELIGIBLE
000900     COPY LOANREC.                                                ELIGIBLE
001000 01  WS-DECISION              PIC X(01).                          ELIGIBLE
001100     88  DECISION-APPROVE         VALUE 'A'.                      ELIGIBLE
001200     88  DECISION-REFER           VALUE 'R'.                      ELIGIBLE
001300     88  DECISION-DECLINE         VALUE 'D'.                      ELIGIBLE
001400 01  WS-REASON                PIC X(30).                          ELIGIBLE
001500 01  WS-DTI                   PIC 9V9(04)     COMP-3.             ELIGIBLE
001600 01  WS-MAX-AMOUNT            PIC 9(09)V99    COMP-3.             ELIGIBLE
001700                                                                  ELIGIBLE
001800 PROCEDURE DIVISION.                                              ELIGIBLE
001900 0000-MAIN.                                                       ELIGIBLE
002000     SET DECISION-APPROVE TO TRUE                                 ELIGIBLE
002100     PERFORM 1000-CHECK-AGE                                       ELIGIBLE
002200     PERFORM 2000-CHECK-RESIDENCE                                 ELIGIBLE
002300     PERFORM 3000-CHECK-SCORE                                     ELIGIBLE
002400     PERFORM 4000-CHECK-DTI                                       ELIGIBLE
002500     PERFORM 5000-CHECK-AMOUNT                                    ELIGIBLE
002600     GOBACK.                                                      ELIGIBLE
002700                                                                  ELIGIBLE
002800*    BORROWERS MUST BE ADULTS; OVER 75 NEEDS A MANUAL REVIEW      ELIGIBLE
002900 1000-CHECK-AGE.                                                  ELIGIBLE
003000     IF BORROWER-AGE < 18                                         ELIGIBLE
003100         SET DECISION-DECLINE TO TRUE                             ELIGIBLE
003200         MOVE 'UNDER AGE' TO WS-REASON                            ELIGIBLE
003300     ELSE                                                         ELIGIBLE
003400         IF BORROWER-AGE > 75 AND NOT DECISION-DECLINE            ELIGIBLE
003500             SET DECISION-REFER TO TRUE                           ELIGIBLE
003600             MOVE 'AGE REVIEW' TO WS-REASON                       ELIGIBLE
003700         END-IF                                                   ELIGIBLE
003800     END-IF.                                                      ELIGIBLE
003900                                                                  ELIGIBLE
004000*    ONLY DOMESTIC AND EU RESIDENTS                               ELIGIBLE
004100 2000-CHECK-RESIDENCE.                                            ELIGIBLE
004200     IF BORROWER-COUNTRY NOT = 'US' AND BORROWER-COUNTRY NOT =    ELIGIBLE
004300        'DE' AND BORROWER-COUNTRY NOT = 'FR'                      ELIGIBLE
004400         SET DECISION-DECLINE TO TRUE                             ELIGIBLE
004500         MOVE 'RESIDENCE' TO WS-REASON                            ELIGIBLE
004600     END-IF.                                                      ELIGIBLE
004700                                                                  ELIGIBLE
004800*    CREDIT SCORE BANDS: BELOW 580 DECLINE, 580-669 REFER         ELIGIBLE
004900 3000-CHECK-SCORE.                                                ELIGIBLE
005000     EVALUATE TRUE                                                ELIGIBLE
005100         WHEN BORROWER-SCORE < 580                                ELIGIBLE
005200             SET DECISION-DECLINE TO TRUE                         ELIGIBLE
005300             MOVE 'LOW SCORE' TO WS-REASON                        ELIGIBLE
005400         WHEN BORROWER-SCORE < 670 AND NOT DECISION-DECLINE       ELIGIBLE
005500             SET DECISION-REFER TO TRUE                           ELIGIBLE
005600             MOVE 'SCORE REVIEW' TO WS-REASON                     ELIGIBLE
005700     END-EVALUATE.                                                ELIGIBLE
005800                                                                  ELIGIBLE
005900*    DEBT-TO-INCOME: ABOVE 43% DECLINE, ABOVE 36% REFER           ELIGIBLE
006000 4000-CHECK-DTI.                                                  ELIGIBLE
006100     IF BORROWER-INCOME = 0                                       ELIGIBLE
006200         SET DECISION-DECLINE TO TRUE                             ELIGIBLE
006300         MOVE 'NO INCOME' TO WS-REASON                            ELIGIBLE
006400     ELSE                                                         ELIGIBLE
006500         COMPUTE WS-DTI ROUNDED = BORROWER-DEBT / BORROWER-INCOME ELIGIBLE
006600         IF WS-DTI > 0.43                                         ELIGIBLE
006700             SET DECISION-DECLINE TO TRUE                         ELIGIBLE
006800             MOVE 'DEBT RATIO' TO WS-REASON                       ELIGIBLE
006900         ELSE                                                     ELIGIBLE
007000             IF WS-DTI > 0.36 AND NOT DECISION-DECLINE            ELIGIBLE
007100                 SET DECISION-REFER TO TRUE                       ELIGIBLE
007200             END-IF                                               ELIGIBLE
007300         END-IF                                                   ELIGIBLE
007400     END-IF.                                                      ELIGIBLE
007500                                                                  ELIGIBLE
007600*    MAXIMUM AMOUNT BY LOAN TYPE: FIVE TIMES INCOME FOR MORTGAGES ELIGIBLE
007700 5000-CHECK-AMOUNT.                                               ELIGIBLE
007800     EVALUATE TRUE                                                ELIGIBLE
007900         WHEN LOAN-TYPE-MORTGAGE                                  ELIGIBLE
008000             COMPUTE WS-MAX-AMOUNT = BORROWER-INCOME * 5          ELIGIBLE
008100         WHEN LOAN-TYPE-AUTO                                      ELIGIBLE
008200             MOVE 75000 TO WS-MAX-AMOUNT                          ELIGIBLE
008300         WHEN OTHER                                               ELIGIBLE
008400             MOVE 25000 TO WS-MAX-AMOUNT                          ELIGIBLE
008500     END-EVALUATE                                                 ELIGIBLE
008600     IF LOAN-PRINCIPAL > WS-MAX-AMOUNT                            ELIGIBLE
008700         SET DECISION-DECLINE TO TRUE                             ELIGIBLE
008800         MOVE 'AMOUNT OVER LIMIT' TO WS-REASON                    ELIGIBLE
008900     END-IF.                                                      ELIGIBLE

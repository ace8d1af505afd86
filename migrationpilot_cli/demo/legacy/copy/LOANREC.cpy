      *================================================================*
      * LOANREC - LOAN MASTER RECORD                                   *
      * SHARED BY LOANCALC, ELIGIBLE AND THE NIGHTLY BATCH             *
      *================================================================*
       01  LOAN-RECORD.
           05  LOAN-ID                 PIC X(10).
           05  LOAN-TYPE               PIC X(02).
               88  LOAN-TYPE-MORTGAGE      VALUE 'MG'.
               88  LOAN-TYPE-AUTO          VALUE 'AU'.
               88  LOAN-TYPE-PERSONAL      VALUE 'PL'.
           05  LOAN-PRINCIPAL          PIC 9(09)V99 COMP-3.
           05  LOAN-BALANCE            PIC 9(09)V99 COMP-3.
           05  LOAN-ANNUAL-RATE        PIC 9(02)V9(04) COMP-3.
           05  LOAN-TERM-MONTHS        PIC 9(03).
           05  LOAN-PAYMENTS-MADE      PIC 9(03).
           05  LOAN-DAYS-LATE          PIC 9(03).
           05  LOAN-STATUS             PIC X(01).
               88  LOAN-ACTIVE             VALUE 'A'.
               88  LOAN-DELINQUENT         VALUE 'D'.
               88  LOAN-CLOSED             VALUE 'C'.
           05  BORROWER.
               10  BORROWER-AGE        PIC 9(03).
               10  BORROWER-INCOME     PIC 9(09)V99 COMP-3.
               10  BORROWER-DEBT       PIC 9(09)V99 COMP-3.
               10  BORROWER-SCORE      PIC 9(03).
               10  BORROWER-COUNTRY    PIC X(02).

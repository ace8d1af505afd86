package com.acme.loans;

import java.math.BigDecimal;
import java.math.MathContext;
import java.math.RoundingMode;

/** Monthly loan accounting, migrated from LOANCALC (COBOL, 1987). */
public final class InterestCalculator {
    private static final BigDecimal TWELVE_HUNDRED = new BigDecimal("1200");
    private static final BigDecimal MORTGAGE_FLOOR = new BigDecimal("2.5");
    private static final BigDecimal PENALTY_RATE = new BigDecimal("0.02");
    private static final BigDecimal LATE_FEE_RATE = new BigDecimal("0.05");
    private static final BigDecimal MIN_LATE_FEE = new BigDecimal("15.00");
    private static final BigDecimal MAX_LATE_FEE = new BigDecimal("150.00");
    private static final int GRACE_DAYS = 10;
    private static final MathContext PRECISION = new MathContext(20, RoundingMode.HALF_UP);

    /** Rule "Monthly rate from the nominal annual rate" and "Mortgage rate floor of 2.5%". */
    public BigDecimal monthlyRate(Loan loan) {
        BigDecimal annual = loan.type() == LoanType.MORTGAGE
                ? loan.annualRate().max(MORTGAGE_FLOOR)
                : loan.annualRate();
        return annual.divide(TWELVE_HUNDRED, 8, RoundingMode.HALF_UP);
    }

    /** Rules "Monthly interest on the outstanding balance" and "Penalty interest on delinquent loans". */
    public BigDecimal monthlyInterest(Loan loan) {
        BigDecimal interest = loan.balance().multiply(monthlyRate(loan), PRECISION);
        if (loan.status() == LoanStatus.DELINQUENT) {
            interest = interest.add(loan.balance().multiply(PENALTY_RATE).divide(BigDecimal.valueOf(12), PRECISION));
        }
        return interest.setScale(2, RoundingMode.HALF_UP);
    }

    /** Rules "Level annuity payment" and "Final payment clears the balance". */
    public BigDecimal payment(Loan loan) {
        int remaining = loan.termMonths() - loan.paymentsMade();
        if (remaining == 0) {
            return loan.balance();
        }
        BigDecimal rate = monthlyRate(loan);
        BigDecimal factor = BigDecimal.ONE.add(rate).pow(remaining, PRECISION);
        return loan.balance().multiply(rate).multiply(factor)
                .divide(factor.subtract(BigDecimal.ONE), 2, RoundingMode.HALF_UP);
    }

    /** Rules "Late fees start after a 10-day grace period", "Late fee is 5% of the payment", and the bounds. */
    public BigDecimal lateFee(Loan loan, BigDecimal payment) {
        if (loan.daysLate() <= GRACE_DAYS) {
            return BigDecimal.ZERO.setScale(2);
        }
        BigDecimal fee = payment.multiply(LATE_FEE_RATE).setScale(2, RoundingMode.HALF_UP);
        return fee.max(MIN_LATE_FEE).min(MAX_LATE_FEE);
    }
}

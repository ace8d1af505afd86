package com.acme.loans;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.math.BigDecimal;
import org.junit.jupiter.api.Test;

class InterestCalculatorTest {
    private final InterestCalculator calculator = new InterestCalculator();

    @Test
    void sixPercentIsHalfAPercentAMonth() {
        Loan loan = Loan.auto(new BigDecimal("10000.00"), new BigDecimal("6.0"));
        assertEquals(new BigDecimal("0.00500000"), calculator.monthlyRate(loan));
    }

    @Test
    void lateFeeIsCappedAt150() {
        Loan loan = Loan.auto(new BigDecimal("10000.00"), new BigDecimal("6.0")).withDaysLate(30);
        assertEquals(new BigDecimal("150.00"), calculator.lateFee(loan, new BigDecimal("5000.00")));
    }
}

package com.acme.loans;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.Set;

/** Loan eligibility, migrated from ELIGIBLE (COBOL). The checks run in the legacy order. */
public final class EligibilityService {
    private static final Set<String> COUNTRIES = Set.of("US", "DE", "FR");

    public Decision decide(Application application) {
        Decision decision = Decision.approve();
        if (application.age() < 18) {
            decision = Decision.decline("UNDER AGE");
        } else if (application.age() > 75) {
            decision = decision.refer("AGE REVIEW");
        }
        if (!COUNTRIES.contains(application.country())) {
            decision = Decision.decline("RESIDENCE");
        }
        if (application.score() < 580) {
            decision = Decision.decline("LOW SCORE");
        } else if (application.score() < 670) {
            decision = decision.refer("SCORE REVIEW");
        }
        if (application.income().signum() == 0) {
            decision = Decision.decline("NO INCOME");
        } else {
            BigDecimal dti = application.debt().divide(application.income(), 4, RoundingMode.HALF_UP);
            if (dti.compareTo(new BigDecimal("0.43")) > 0) {
                decision = Decision.decline("DEBT RATIO");
            } else if (dti.compareTo(new BigDecimal("0.36")) > 0) {
                decision = decision.refer(decision.reason());
            }
        }
        if (application.principal().compareTo(maximumAmount(application)) > 0) {
            decision = Decision.decline("AMOUNT OVER LIMIT");
        }
        return decision;
    }

    private BigDecimal maximumAmount(Application application) {
        return switch (application.loanType()) {
            case MORTGAGE -> application.income().multiply(BigDecimal.valueOf(5));
            case AUTO -> new BigDecimal("75000");
            default -> new BigDecimal("25000");
        };
    }
}

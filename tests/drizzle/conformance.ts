// An application written against the design's Drizzle schema (schema.ts and diagram.ts, copied
// verbatim from ../shared/contract/) must run unchanged on a database that
// `migrationpilot db migrate` made. This script is such an application: it writes a row into
// every table with the design's columns only, leaving out what the design lets an insert leave
// out (ids, defaults, the organization of children, our computed columns), runs the design's two
// example queries, reviews a rule and writes that version's rule_versions row as the design's
// applications do, reads every column of every table, and reads the reviewers' queue once more
// as a user through row-level security (the documented way: SET LOCAL ROLE migrationpilot_app and
// app.current_user_id, inside a transaction). Every check is an assertion: any mismatch exits 1.
//
//   DATABASE_URL=postgresql://... npx tsx conformance.ts        (tests/test_drizzle.py runs it)
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { and, asc, eq, gte, sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import * as schema from './schema';
import * as diagram from './diagram';

const { tenants, organizations, users, projects, businessRules, ruleVersions, auditLogs, routingRules } =
  schema;
const { sourceFiles, generatedFiles, testCases } = diagram;

const url = process.env.DATABASE_URL;
if (!url) {
  console.error('conformance.ts: set DATABASE_URL to the migrated database');
  process.exit(2);
}
const pool = new pg.Pool({ connectionString: url });
const db = drizzle(pool);

const ids = (rows: { id: string }[]) => rows.map((row) => row.id).sort();

async function main(): Promise<string> {
  // Tenancy: the organization names no tenant (the database takes the only one), the second
  // user names no organization (the only one) and no role (the design's default).
  const [tenant] = await db.insert(tenants).values({ name: 'Acme Corp', slug: 'acme' }).returning();
  const minutesOff = Math.abs(tenant.createdAt.getTime() - Date.now()) / 60_000;
  assert.ok(minutesOff < 5, `tenants.created_at read by Drizzle is ${Math.round(minutesOff)} minutes off the clock: ` +
    `the design's timestamp() columns are read as UTC, so the database's TimeZone must be UTC`);
  const [org] = await db.insert(organizations).values({ name: 'Acme Payments', slug: 'acme-pay' }).returning();
  const [ana] = await db.insert(users)
    .values({ email: 'Ana.Lima@Acme.test', name: 'Ana Lima', organizationId: org.id, role: 'reviewer' })
    .returning();
  assert.equal(ana.email, 'Ana.Lima@Acme.test', 'users.email is stored as given');
  const [dev] = await db.insert(users).values({ email: 'dev@acme.test', name: 'Dev Eloper' }).returning();
  assert.equal(dev.organizationId, org.id, 'users.organization_id filled with the only organization');
  assert.equal(dev.role, 'developer', "users.role defaults to 'developer'");

  // A project (its organization taken from its creator) and its children, none naming an
  // organization.
  const [project] = await db.insert(projects)
    .values({ name: 'Loans core', sourceLanguage: 'cobol', targetLanguage: 'java', createdBy: ana.id })
    .returning();
  assert.equal(project.organizationId, org.id, "projects.organization_id filled from the creator's");
  assert.equal(project.status, 'draft');
  const source = 'IF DAYS-LATE > 5\n    COMPUTE FEE = BALANCE * 0.015\nEND-IF.\n';
  await db.insert(sourceFiles).values({ projectId: project.id, path: 'src/LATEFEE.cbl', content: source, language: 'cobol' });
  const rule = (name: string, confidence: string) => ({
    projectId: project.id, name, description: `${name}, as the legacy code does it`, category: 'calculation' as const,
    sourceFile: 'src/LATEFEE.cbl', sourceStartLine: 1, sourceEndLine: 3, sourceCode: source,
    logic: 'fee = balance * 0.015 when more than 5 days late', confidence,
  });
  const [lateFee, grace, rounding] = await db.insert(businessRules)
    .values([rule('Late fee', '0.950'), rule('Grace period', '0.920'), rule('Fee rounding', '0.600')])
    .returning();
  assert.deepEqual([lateFee.version, lateFee.reviewStatus], [1, 'pending']);
  await db.insert(generatedFiles).values({
    projectId: project.id, path: 'src/main/java/LateFee.java', type: 'source',
    content: 'class LateFee {\n  static double fee(double balance) { return balance * 0.015; }\n}\n',
  });
  await db.insert(testCases).values({ projectId: project.id, ruleId: lateFee.id, inputs: { balance: 1000, days_late: 10 }, expected: { fee: 15 } });
  await db.insert(auditLogs).values({
    organizationId: org.id, userId: ana.id, action: 'rule.import', resourceType: 'business_rule',
    resourceId: lateFee.id, metadata: { rules: 3 }, ipAddress: '203.0.113.7',
  });
  // A split of one path among two services. Names are unique per project (case aside).
  const split = { projectId: project.id, pathPattern: '/api/late-fees/**', enabled: true };
  await db.insert(routingRules).values([
    { ...split, name: 'Late fees API', targetService: 'modern', trafficPercentage: 90 },
    { ...split, name: 'Late fees API (legacy)', targetService: 'legacy', trafficPercentage: 10 },
  ]);

  // Another organization's pending rule, which row-level security must hide from Ana.
  const [other] = await db.insert(organizations).values({ name: 'Globex Ops', slug: 'globex-ops' }).returning();
  const [otherProject] = await db.insert(projects)
    .values({ name: 'Billing', organizationId: other.id, sourceLanguage: 'vb6', targetLanguage: 'csharp' })
    .returning();
  const [hidden] = await db.insert(businessRules).values({ ...rule('Invoice total', '0.990'), projectId: otherProject.id }).returning();

  // The design's two example queries.
  const projectWithRules = await db.select().from(projects)
    .leftJoin(businessRules, eq(projects.id, businessRules.projectId))
    .where(eq(projects.id, project.id));
  assert.deepEqual(projectWithRules.map((row) => row.projects.id), [project.id, project.id, project.id]);
  assert.deepEqual(ids(projectWithRules.map((row) => row.business_rules!)), ids([lateFee, grace, rounding]));
  // As the design writes it: 0.9 a number (tsc would want '0.9' for a decimal column; tsx does
  // not type-check, and node-postgres sends either as text).
  const pending = () => db.select().from(businessRules)
    .where(and(eq(businessRules.reviewStatus, 'pending'), gte(businessRules.confidence, 0.9)));
  assert.deepEqual(ids(await pending()), ids([lateFee, grace, hidden]), 'pending rules with confidence >= 0.9');

  // A review, and the version row the application writes for it: the database wrote version 2
  // on the update, and the application's row completes it (one row per version either way).
  await db.transaction(async (tx) => {
    const [reviewed] = await tx.update(businessRules)
      .set({ reviewStatus: 'approved', reviewedBy: ana.id, reviewComments: 'matches LATEFEE.cbl', version: lateFee.version + 1 })
      .where(eq(businessRules.id, lateFee.id))
      .returning();
    assert.equal(reviewed.version, 2, 'business_rules.version after one review');
    await tx.insert(ruleVersions).values({
      ruleId: reviewed.id, version: reviewed.version, snapshot: reviewed, changedBy: ana.id, changeReason: 'approved in review',
    });
  });
  const versions = await db.select().from(ruleVersions).where(eq(ruleVersions.ruleId, lateFee.id)).orderBy(asc(ruleVersions.version));
  assert.deepEqual(versions.map((v) => [v.version, v.changedBy, v.changeReason]),
    [[1, null, null], [2, ana.id, 'approved in review']], 'one rule_versions row per version, the application\'s on version 2');
  assert.equal((versions[1].snapshot as { review_status: string }).review_status, 'approved');

  // Every column of every table.
  const tables = { tenants, organizations, users, projects, sourceFiles, businessRules, ruleVersions,
    generatedFiles, testCases, auditLogs, routingRules };
  const counts: string[] = [];
  for (const [name, table] of Object.entries(tables)) {
    const rows = await db.select().from(table);
    assert.ok(rows.length > 0, `${name}: no rows`);
    counts.push(`${name} ${rows.length}`);
  }
  const [rulesRead] = await db.select().from(routingRules).where(eq(routingRules.targetService, 'legacy'));
  assert.deepEqual([rulesRead.name, rulesRead.trafficPercentage, rulesRead.enabled, rulesRead.shadowMode],
    ['Late fees API (legacy)', 10, true, false]);

  // The reviewers' queue as Ana, through row-level security: her organization's rules only.
  const asAna = await db.transaction(async (tx) => {
    await tx.execute(sql`SET LOCAL ROLE migrationpilot_app`);
    await tx.execute(sql`SELECT set_config('app.current_user_id', ${ana.id}, true)`);
    return tx.select().from(businessRules)
      .where(and(eq(businessRules.reviewStatus, 'pending'), gte(businessRules.confidence, 0.9)));
  });
  assert.deepEqual(ids(asAna), [grace.id], 'pending rules with confidence >= 0.9 as Ana (row-level security)');
  assert.deepEqual(ids(await pending()), ids([grace, hidden]), 'pending rules with confidence >= 0.9 as the owner');

  return `rows in all 11 tables (${counts.join(', ')}); both example queries; a review with its ` +
    `rule_versions row (versions 1, 2); as ${ana.email} under row-level security 1 of 2 pending rules`;
}

try {
  console.log(`drizzle conformance: ok: ${await main()}`);
} catch (error) {
  let detail = '';
  if (error instanceof assert.AssertionError && !error.message.includes('\n')) {  // Node < 20: no diff
    detail = `\nactual:   ${inspect(error.actual)}\nexpected: ${inspect(error.expected)}`;
  }
  // Drizzle wraps a database error (the cause) in one that names the statement and parameters.
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.message) detail = `\nerror: ${cause.message} (SQLSTATE ${cause.code})`;
  console.error(`drizzle conformance FAILED: ${error instanceof Error ? error.message : error}${detail}`);
  process.exitCode = 1;
} finally {
  await pool.end();
}

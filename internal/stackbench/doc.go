// Package stackbench holds benchmarks that span packages: the cost the
// CTAPHID layer adds to an authenticator command. It has no code of its own.
package stackbench

"""`reconciler init`: a promotion repository without any tool source (settings, workflows, the
pinned action, CODEOWNERS, the pre-commit hook, schemas, a README), from templates shipped in the
package and pinned to the installed version."""

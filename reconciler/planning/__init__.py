"""From desired and actual state to a plan: the pure diff (plan), promotion policy and the
registry evidence it needs (policy, evidence), the order environments are promoted in
(promotion_order), what a reviewer sees of a change (review), and the status table (status)."""

"""The defender: one per host. It follows containers, feeds sensor events to the models
and the policy, and reports through the console link."""

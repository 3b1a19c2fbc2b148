"""Every fact the apps, the Pulumi program, the local runner and the tests share.

One place, read by all of them, so nothing is kept in step by hand: app ids, ports,
roles and egress, Dapr component names, the service-invocation access rules and public
API prefixes (`services`); topics, dead-letter topics, event types and subscriptions
(`events`); how ephemeral stacks are named and how long they live (`ephemeral`).

Standard library only, and nothing from the rest of `apps`: the program imports this
package (its one import from `apps`) without pulling in FastAPI or SQLAlchemy, and the
images carry it with the services. The names here are those of architecture §10.
"""

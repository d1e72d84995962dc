import unittest

from app.entities import Account, Capsule, Document, RoleAssignment, SecurityGroup, Tenant


class EntityKeys(unittest.TestCase):
    def test_account_key_is_capsule_scoped(self):
        account = Account("t1", "c1", "a1", "ann@example.com")
        self.assertEqual(account.key(), "TENANT#t1#CAPSULE#c1#ACCOUNT#a1")

    def test_capsule_and_document_keys_are_capsule_scoped(self):
        self.assertEqual(Capsule("t1", "c1", "ops").key(), "TENANT#t1#CAPSULE#c1#CAPSULE#c1")
        self.assertEqual(Document("t1", "c1", "d1", "a2").key(), "TENANT#t1#CAPSULE#c1#DOCUMENT#d1")

    def test_tenant_is_platform_level(self):
        self.assertEqual(Tenant("t1", "pro").key(), "PLATFORM#TENANT#t1")

    def test_role_assignment_event_names_the_account(self):
        event = RoleAssignment("t1", "admin", "a1").created_event()
        self.assertEqual(event["account_id"], "a1")

    def test_security_group_event_carries_rules(self):
        event = SecurityGroup("t1", "g1", ("allow:443",)).updated_event()
        self.assertEqual(event["rules"], ("allow:443",))


if __name__ == "__main__":
    unittest.main()

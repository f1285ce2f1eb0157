"""Seeds the test domain through Samba's own Python bindings, in transactions of 100 adds.

Samba's per-add cost grows with the directory (index caches are copied on every nested
transaction), so one transaction for everything is slower, not faster: 10,000 users take
about 90 s either way on 2 cores, the bulk of CI's setup.

Run with Debian's python3 (the one python3-samba belongs to), while samba is stopped:
    /usr/bin/python3 seed.py SMB_CONF SAM_LDB USERS

Creates, under DC=corp,DC=test:
  OU=Staff      USERS users user00000.. (every 10th disabled), 3 computer accounts
  OU=Outside    1 user outside the user search scope
  OU=Groups     Big Group (3,000 members), Parent -> Child -> Parent (a cycle) with users,
                Mixed (a user in scope, one outside, one computer), and three groups whose
                names differ only by filter metacharacters: Ops, Ops*, Ops*(x)\\y
"""
import sys
import time

from samba.auth import system_session
from samba.param import LoadParm
from samba.samdb import SamDB

smb_conf, sam_ldb, users = sys.argv[1], sys.argv[2], int(sys.argv[3])
lp = LoadParm()
lp.load(smb_conf)
db = SamDB(url=sam_ldb, session_info=system_session(), lp=lp)
domain = "DC=corp,DC=test"
staff, outside, groups = f"OU=Staff,{domain}", f"OU=Outside,{domain}", f"OU=Groups,{domain}"
started = time.time()


def user_dn(i):
    return f"CN=User {i:05d},{staff}"


db.transaction_start()
for ou in (staff, outside, groups):
    db.add({"dn": ou, "objectClass": "organizationalUnit"})
for i in range(users):
    if i % 100 == 0:
        db.transaction_commit()
        db.transaction_start()
    db.add({
        "dn": user_dn(i),
        "objectClass": "user",
        "sAMAccountName": f"user{i:05d}",
        "userPrincipalName": f"user{i:05d}@corp.test",
        "mail": f"User{i:05d}@corp.test",
        "givenName": f"Given{i}",
        "sn": f"Family{i}",
        "displayName": f"Given{i} Family{i}",
        "title": "Agent" if i % 2 else "Senior Agent",
        "department": f"Dept{i % 7}",
        "userAccountControl": "514" if i % 10 == 0 else "512",
    })
for n in range(3):
    db.add({"dn": f"CN=WS{n:02d},{staff}", "objectClass": "computer", "sAMAccountName": f"WS{n:02d}$",
            "userAccountControl": "4096"})
db.add({"dn": f"CN=Outsider,{outside}", "objectClass": "user", "sAMAccountName": "outsider",
        "mail": "outsider@corp.test", "userAccountControl": "512"})


def group(cn, members, sam=None):
    entry = {"dn": f"CN={cn},{groups}", "objectClass": "group"}
    if sam:
        entry["sAMAccountName"] = sam
    if members:
        entry["member"] = members
    db.add(entry)


group("Big Group", [user_dn(i) for i in range(min(3000, users))], sam="big-group")
group("Child", [user_dn(9991 % users), user_dn(9992 % users)])
group("Parent", [user_dn(9990 % users), f"CN=Child,{groups}"])
db.modify_ldif(f"dn: CN=Child,{groups}\nchangetype: modify\nadd: member\nmember: CN=Parent,{groups}\n")
group("Mixed", [user_dn(1), f"CN=Outsider,{outside}", f"CN=WS00,{staff}"])
group("Ops", [user_dn(11)], sam="ops")
group("Ops*", [user_dn(12)], sam="ops-star")
group("Ops*(x)\\5Cy", [user_dn(13)], sam="ops-meta")
db.transaction_commit()
print(f"seeded {users} users in {time.time() - started:.1f} s")

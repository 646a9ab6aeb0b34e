-- The SQLite file bookwish_jobs made before issue 27 (main at a9c4c59): its tables, as
-- CREATE statements (generated from that version's models). Used to test the upgrade.

CREATE TABLE "User" (
	id VARCHAR NOT NULL, 
	email VARCHAR NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (email)
);

CREATE TABLE "PushToken" (
	id VARCHAR NOT NULL, 
	"userId" VARCHAR NOT NULL, 
	token VARCHAR NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY("userId") REFERENCES "User" (id) ON DELETE CASCADE, 
	UNIQUE (token)
);
CREATE INDEX "ix_PushToken_userId" ON "PushToken" ("userId");

CREATE TABLE "Store" (
	id VARCHAR NOT NULL, 
	name VARCHAR NOT NULL, 
	email VARCHAR, 
	"ownerId" VARCHAR, 
	"inventorySource" TEXT DEFAULT 'manual' NOT NULL, 
	"squareAccessToken" VARCHAR, 
	"squareLocationId" VARCHAR, 
	PRIMARY KEY (id), 
	FOREIGN KEY("ownerId") REFERENCES "User" (id)
);

CREATE TABLE "Inventory" (
	id VARCHAR NOT NULL, 
	"storeId" VARCHAR NOT NULL, 
	title VARCHAR NOT NULL, 
	"squareCatalogObjectId" VARCHAR, 
	quantity INTEGER DEFAULT '0' NOT NULL, 
	"reservedQuantity" INTEGER DEFAULT '0' NOT NULL, 
	"updatedAt" DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY("storeId") REFERENCES "Store" (id)
);
CREATE INDEX "ix_Inventory_storeId" ON "Inventory" ("storeId");

CREATE TABLE "Order" (
	id VARCHAR NOT NULL, 
	"orderNumber" VARCHAR NOT NULL, 
	"storeId" VARCHAR NOT NULL, 
	"userId" VARCHAR, 
	status TEXT DEFAULT 'pending' NOT NULL, 
	"paymentStatus" TEXT DEFAULT 'pending' NOT NULL, 
	"createdAt" DATETIME NOT NULL, 
	"updatedAt" DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE ("orderNumber"), 
	FOREIGN KEY("storeId") REFERENCES "Store" (id), 
	FOREIGN KEY("userId") REFERENCES "User" (id)
);
CREATE INDEX "ix_Order_status" ON "Order" (status);
CREATE INDEX "ix_Order_storeId" ON "Order" ("storeId");

CREATE TABLE "BookwishOpsDigestQueue" (
	"orderId" VARCHAR NOT NULL, 
	id VARCHAR NOT NULL, 
	processed BOOLEAN DEFAULT 0 NOT NULL, 
	"processedAt" DATETIME, 
	"createdAt" DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY("orderId") REFERENCES "Order" (id)
);
CREATE INDEX "ix_BookwishOpsDigestQueue_processed" ON "BookwishOpsDigestQueue" (processed);

CREATE TABLE "OrderDigestQueue" (
	"storeId" VARCHAR NOT NULL, 
	"orderId" VARCHAR NOT NULL, 
	"isSpecialOrder" BOOLEAN DEFAULT 0 NOT NULL, 
	id VARCHAR NOT NULL, 
	processed BOOLEAN DEFAULT 0 NOT NULL, 
	"processedAt" DATETIME, 
	"createdAt" DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY("storeId") REFERENCES "Store" (id), 
	FOREIGN KEY("orderId") REFERENCES "Order" (id)
);
CREATE INDEX "ix_OrderDigestQueue_processed" ON "OrderDigestQueue" (processed);
CREATE INDEX "ix_OrderDigestQueue_storeId" ON "OrderDigestQueue" ("storeId");

CREATE TABLE "OrderItem" (
	id VARCHAR NOT NULL, 
	"orderId" VARCHAR NOT NULL, 
	"inventoryId" VARCHAR, 
	title VARCHAR NOT NULL, 
	quantity INTEGER DEFAULT '1' NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY("orderId") REFERENCES "Order" (id) ON DELETE CASCADE, 
	FOREIGN KEY("inventoryId") REFERENCES "Inventory" (id)
);
CREATE INDEX "ix_OrderItem_orderId" ON "OrderItem" ("orderId");

CREATE TABLE digest_claim (
	entry_table VARCHAR NOT NULL, 
	entry_id VARCHAR NOT NULL, 
	claim_id VARCHAR NOT NULL, 
	claimed_at DATETIME NOT NULL, 
	send_started_at DATETIME, 
	PRIMARY KEY (entry_table, entry_id)
);
CREATE INDEX ix_digest_claim_claim_id ON digest_claim (claim_id);

CREATE TABLE notification_delivery (
	id VARCHAR NOT NULL, 
	notification_id VARCHAR NOT NULL, 
	channel VARCHAR NOT NULL, 
	target VARCHAR NOT NULL, 
	provider_id VARCHAR, 
	delivered_at DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (notification_id, channel, target)
);
CREATE INDEX ix_notification_delivery_notification_id ON notification_delivery (notification_id);

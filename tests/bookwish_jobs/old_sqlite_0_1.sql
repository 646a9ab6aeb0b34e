-- The SQLite file bookwish_jobs 0.1 (before the Prisma-shaped models) created at start-up:
-- its tables, as CREATE statements. Used to test the upgrade of an existing var/bookwish.db.
CREATE TABLE "NotificationDelivery" (
	id VARCHAR NOT NULL, 
	"notificationId" VARCHAR NOT NULL, 
	channel VARCHAR NOT NULL, 
	target VARCHAR NOT NULL, 
	"providerId" VARCHAR, 
	"deliveredAt" DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE ("notificationId", channel, target)
);

CREATE INDEX "ix_NotificationDelivery_notificationId" ON "NotificationDelivery" ("notificationId");

CREATE TABLE "User" (
	id VARCHAR NOT NULL, 
	email VARCHAR NOT NULL, 
	name VARCHAR, 
	"createdAt" DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (email)
);

CREATE TABLE "Notification" (
	id VARCHAR NOT NULL, 
	"userId" VARCHAR NOT NULL, 
	type VARCHAR NOT NULL, 
	title VARCHAR NOT NULL, 
	body VARCHAR NOT NULL, 
	"orderId" VARCHAR, 
	"isRead" BOOLEAN NOT NULL, 
	"createdAt" DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY("userId") REFERENCES "User" (id) ON DELETE CASCADE
);

CREATE INDEX "ix_Notification_userId" ON "Notification" ("userId");

CREATE TABLE "PushToken" (
	id VARCHAR NOT NULL, 
	"userId" VARCHAR NOT NULL, 
	token VARCHAR NOT NULL, 
	platform VARCHAR, 
	"createdAt" DATETIME NOT NULL, 
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
	"inventorySource" VARCHAR NOT NULL, 
	"squareAccessToken" VARCHAR, 
	"squareLocationId" VARCHAR, 
	"createdAt" DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY("ownerId") REFERENCES "User" (id)
);

CREATE TABLE "Inventory" (
	id VARCHAR NOT NULL, 
	"storeId" VARCHAR NOT NULL, 
	title VARCHAR NOT NULL, 
	sku VARCHAR, 
	"squareCatalogObjectId" VARCHAR, 
	quantity INTEGER NOT NULL, 
	"reservedQuantity" INTEGER NOT NULL, 
	"updatedAt" DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE ("storeId", "squareCatalogObjectId"), 
	FOREIGN KEY("storeId") REFERENCES "Store" (id)
);

CREATE INDEX "ix_Inventory_storeId" ON "Inventory" ("storeId");

CREATE TABLE "Order" (
	id VARCHAR NOT NULL, 
	"orderNumber" VARCHAR NOT NULL, 
	"storeId" VARCHAR NOT NULL, 
	"userId" VARCHAR, 
	status VARCHAR NOT NULL, 
	"paymentStatus" VARCHAR NOT NULL, 
	"totalCents" INTEGER NOT NULL, 
	"createdAt" DATETIME NOT NULL, 
	"updatedAt" DATETIME NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE ("orderNumber"), 
	FOREIGN KEY("storeId") REFERENCES "Store" (id), 
	FOREIGN KEY("userId") REFERENCES "User" (id)
);

CREATE INDEX "ix_Order_status" ON "Order" (status);

CREATE INDEX "ix_Order_storeId" ON "Order" ("storeId");

CREATE TABLE "OpsDigestQueue" (
	"orderId" VARCHAR NOT NULL, 
	id VARCHAR NOT NULL, 
	processed BOOLEAN NOT NULL, 
	"processedAt" DATETIME, 
	"createdAt" DATETIME NOT NULL, 
	"claimId" VARCHAR, 
	"claimedAt" DATETIME, 
	"sendStartedAt" DATETIME, 
	PRIMARY KEY (id), 
	FOREIGN KEY("orderId") REFERENCES "Order" (id)
);

CREATE INDEX "ix_OpsDigestQueue_processed" ON "OpsDigestQueue" (processed);

CREATE INDEX "ix_OpsDigestQueue_claimId" ON "OpsDigestQueue" ("claimId");

CREATE TABLE "OrderItem" (
	id VARCHAR NOT NULL, 
	"orderId" VARCHAR NOT NULL, 
	"inventoryId" VARCHAR, 
	title VARCHAR NOT NULL, 
	quantity INTEGER NOT NULL, 
	"priceCents" INTEGER NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY("orderId") REFERENCES "Order" (id) ON DELETE CASCADE, 
	FOREIGN KEY("inventoryId") REFERENCES "Inventory" (id)
);

CREATE INDEX "ix_OrderItem_orderId" ON "OrderItem" ("orderId");

CREATE TABLE "StoreDigestQueue" (
	"storeId" VARCHAR NOT NULL, 
	"orderId" VARCHAR NOT NULL, 
	"isSpecialOrder" BOOLEAN NOT NULL, 
	id VARCHAR NOT NULL, 
	processed BOOLEAN NOT NULL, 
	"processedAt" DATETIME, 
	"createdAt" DATETIME NOT NULL, 
	"claimId" VARCHAR, 
	"claimedAt" DATETIME, 
	"sendStartedAt" DATETIME, 
	PRIMARY KEY (id), 
	FOREIGN KEY("storeId") REFERENCES "Store" (id), 
	FOREIGN KEY("orderId") REFERENCES "Order" (id)
);

CREATE INDEX "ix_StoreDigestQueue_storeId" ON "StoreDigestQueue" ("storeId");

CREATE INDEX "ix_StoreDigestQueue_processed" ON "StoreDigestQueue" (processed);

CREATE INDEX "ix_StoreDigestQueue_claimId" ON "StoreDigestQueue" ("claimId");

